from pathlib import Path

import pytest
import yaml

from synthwear.errors import SynthwearError
from synthwear.recipe import load_recipe, parse_recipe


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(text)
    return path


def test_shipped_recipes_are_valid():
    for path in (Path(__file__).parents[1] / "recipes").glob("*.yaml"):
        assert load_recipe(path).name


def test_misspelled_key_names_key_and_file(tmp_path):
    raw = yaml.safe_load((Path(__file__).parents[1] / "recipes" / "tiny.yaml").read_text())
    raw["training"]["epoch"] = raw["training"].pop("epochs")
    path = write(tmp_path, yaml.safe_dump(raw))
    with pytest.raises(SynthwearError) as err:
        load_recipe(path)
    message = str(err.value)
    assert str(path) in message and "'training.epoch'" in message and "unknown key" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "name: x\ndata: {dataset: lifesnaps}\nchannels: {steps: {range: [0, 1]}}\ntraining: {epochs: many}\n",
            r"key 'training.epochs'",
        ),
        ("name: x\ndata: {dataset: lifesnaps}\nchannels: {steps: {range: [10, 0]}}\n", r"channels.steps.range"),
        ("name: x\ndata: {dataset: lifesnaps, path: a.csv}\nchannels: {steps: {range: [0, 1]}}\n", "exactly one"),
        ("name: x\nchannels: [unclosed\n", r"line \d+: not valid YAML"),
    ],
)
def test_invalid_recipes_are_one_line_errors(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(SynthwearError, match=expected) as err:
        load_recipe(path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_relative_paths_resolve_against_recipe_folder(tmp_path):
    path = write(tmp_path, "name: x\ndata: {path: data/daily.csv}\nchannels: {steps: {range: [0, 1]}}\n")
    assert load_recipe(path).resolve_path("data/daily.csv") == (tmp_path / "data" / "daily.csv").resolve()


TINY_TEXT = (Path(__file__).parents[1] / "recipes" / "tiny.yaml").read_text()


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda t: t + "training: {epochs: 5}\n", r"line \d+: .*key 'training' appears twice \(first on line \d+\)"),
        (lambda t: t + "split: {validation: 0.5, holdout: 0.6}\n", r"split.validation \+ split.holdout is 1.1"),
        (lambda t: t.replace("range: [35, 115]", "range: [35, .inf]"), r"channels.resting_hr.range"),
        (
            lambda t: t.replace("sampling: {persons: 10}", "sampling: {start_date: 2021-13-01}"),
            r"line \d+: not valid YAML \(2021-13-01: month",
        ),
        (
            lambda t: t.replace("sampling: {persons: 10}", "sampling: {start_date: 2021-02-30}"),
            r"line \d+: not valid YAML \(2021-02-30: day is out of range for month",
        ),
        (lambda t: t.replace("sampling: {persons: 10}", "sampling: {start_date: soon}"), "'sampling.start_date'"),
        (lambda t: t.replace("seed: 0", "seed: -1"), r"key 'seed'"),
        (
            lambda t: t.replace("  steps: {range: [0, 40000]}", "  true: {range: [0, 40000]}"),
            'channels: the key true is not a name .*quote it: "true"',
        ),
        (lambda t: t.replace("training: {", "training: {device: gpu7, "), r"key 'training.device'"),
        (lambda t: t.replace("sampling: {persons: 10}", "sampling: {temperature: .nan}"), "'sampling.temperature"),
        (
            lambda t: t.replace("range: [35, 115], decimals: 1}", "range: [35, 115], decimals: 308}"),
            r"key 'channels.resting_hr.decimals': .*less than or equal to 15",
        ),
        (
            lambda t: t.replace("resting_hr: {range", "date: {range"),
            "channels: 'date' is a key column of the daily table",
        ),
        (lambda t: t.replace("resting_hr: {range", "person_id: {range"), "channels: 'person_id' is a key column"),
        (lambda t: t.replace("resting_hr: {range", "' ': {range"), "channels: ' ' is blank"),
        (
            lambda t: t.replace("dataset: lifesnaps", "{dataset: lifesnaps, columns: {step: daily_steps}}"),
            "data.columns maps 'step', which is neither person_id nor date nor a channel",
        ),
        (
            lambda t: t.replace("dataset: lifesnaps", "{dataset: lifesnaps, columns: {resting_hr: steps}}"),
            "data.columns reads the file's column 'steps' as both 'resting_hr' and 'steps'",
        ),
        (
            lambda t: t.replace("dataset: lifesnaps", "{dataset: lifesnaps, date_format: '%Q-%m'}"),
            r"key 'data.date_format': .*'Q' is a bad directive",
        ),
        (lambda t: t.replace("dataset: lifesnaps", "{dataset: lifesnaps, date_format: mixed}"), "never guessed"),
        (
            lambda t: t.replace("dataset: lifesnaps", "{dataset: lifesnaps, date_format: hello}"),
            r"key 'data.date_format': .*names no year and day",
        ),
        (
            lambda t: t.replace("dataset: lifesnaps", "{dataset: lifesnaps, date_format: '%Y-%m'}"),
            r"key 'data.date_format': .*names no year and day",
        ),
        (
            lambda t: t.replace("dataset: lifesnaps", "{dataset: lifesnaps, date_format: '%Y-%Y'}"),
            r"not a date format \(redefinition of group name",
        ),
        (lambda t: t.replace("range: [0, 40000]", "range: [-1.0e+308, 1.0e+308]"), r"high - low overflows"),
        (
            lambda t: t.replace("sampling: {persons: 10}", "sampling: {start_date: 0001-01-01}"),
            r"'sampling.start_date'.* outside 1678-01-01..2162-01-01",
        ),
        (lambda t: t.replace("sampling: {persons: 10}", "sampling: {days: 10000000}"), r"'sampling.days'.* 36525"),
        (lambda t: t.replace("windows: {days: 7", "windows: {days: 100000"), r"'windows.days'.* 36525"),
    ],
)
def test_bad_recipes_are_one_line_errors(tmp_path, edit, expected):
    path = write(tmp_path, edit(TINY_TEXT))
    with pytest.raises(SynthwearError, match=expected) as err:
        load_recipe(path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "written, expected",
    [("010", 10), ("0o17", 15), ("0x1F", 31), ("+7", 7)],
)
def test_integers_read_as_yaml_1_2_writes_them(tmp_path, written, expected):
    """PyYAML's YAML 1.1 would read 010 as 8; every YAML 1.2 reader (and a person) reads ten."""
    recipe = load_recipe(write(tmp_path, TINY_TEXT.replace("seed: 0", f"seed: {written}")))
    assert recipe.seed == expected


def test_exponents_are_numbers(tmp_path):
    """YAML 1.1 reads 1e-3 as text; the recipe must not depend on the string being coerced."""
    recipe = load_recipe(write(tmp_path, TINY_TEXT.replace("training: {", "training: {learning_rate: 1e-3, ")))
    assert recipe.training.learning_rate == 0.001


@pytest.mark.parametrize(
    "edit, key",
    [
        (lambda t: t.replace("seed: 0", "seed: 12:30:00"), "seed"),  # YAML 1.1: 45000 (base 60)
        (lambda t: t.replace("seed: 0", "seed: true"), "seed"),  # pydantic's lax mode: 1
        (lambda t: t.replace("seed: 0", 'seed: "3"'), "seed"),  # quoted: text, not a number
        (lambda t: t.replace("sampling: {persons: 10}", "sampling: {persons: 10, complete: yes}"), "sampling.complete"),
        (lambda t: t.replace("sampling: {persons: 10}", "sampling: {persons: 10.0}"), "sampling.persons"),
        (lambda t: t.replace("training: {", "training: {learning_rate: '0.1', "), "training.learning_rate"),
    ],
)
def test_scalars_are_not_coerced(tmp_path, edit, key):
    with pytest.raises(SynthwearError, match=rf"key '{key}': "):
        load_recipe(write(tmp_path, edit(TINY_TEXT)))


def test_merge_keys_work_and_their_keys_may_be_overridden(tmp_path):
    text = TINY_TEXT.replace("training: {", "defaults: &d {epochs: 3, learning_rate: 0.01}\ntraining: {<<: *d, ")
    with pytest.raises(SynthwearError, match="unknown key 'defaults'"):  # parsed: only the extra key is refused
        load_recipe(write(tmp_path, text))
    raw = yaml.safe_load(text)
    del raw["defaults"]
    training = load_recipe(write(tmp_path, yaml.safe_dump(raw))).training
    assert training.epochs == 2 and training.learning_rate == 0.01  # the recipe's own epochs, the merged rate


def test_a_key_that_is_a_list_or_mapping_is_one_line(tmp_path):
    with pytest.raises(SynthwearError, match=r"line \d+: not valid YAML \(a key must be a plain value"):
        load_recipe(write(tmp_path, TINY_TEXT + "? [a, b]\n: 1\n"))


def test_a_huge_value_is_quoted_short(tmp_path):
    """An alias can expand one value to megabytes; the message quotes the start of it."""
    lots = "[" + ", ".join(["lots"] * 50) + "]"
    seed = f"seed: [&a {lots}, &b [*a, *a, *a, *a, *a, *a, *a, *a], *b, *b, *b, *b]"
    with pytest.raises(SynthwearError) as err:
        load_recipe(write(tmp_path, TINY_TEXT.replace("seed: 0", seed)))
    assert "key 'seed'" in str(err.value) and len(str(err.value)) < 300


def test_a_folder_or_binary_file_is_not_a_recipe(tmp_path):
    with pytest.raises(SynthwearError, match="is a folder, not a recipe file"):
        load_recipe(tmp_path)
    binary = tmp_path / "model.bin"
    binary.write_bytes(bytes(range(256)))
    with pytest.raises(SynthwearError, match="not a text file"):
        load_recipe(binary)


def test_an_evaluator_listed_twice_is_refused(tmp_path):
    raw = yaml.safe_load(TINY_TEXT)
    raw["evaluation"]["evaluators"].append({"name": "forecast"})
    path = write(tmp_path, yaml.safe_dump(raw))
    with pytest.raises(SynthwearError, match="evaluator 'forecast' is listed twice"):
        load_recipe(path)


def test_temperature_per_channel_names_channels(tmp_path):
    recipe = load_recipe(
        write(tmp_path, TINY_TEXT.replace("sampling: {persons: 10}", "sampling: {temperature: {steps: 0.5}}"))
    )
    assert recipe.sampling.temperatures(list(recipe.channels)) == [1.0, 1.0, 0.5]
    with pytest.raises(SynthwearError, match="sampling.temperature names 'spo2', which is not a channel"):
        load_recipe(
            write(tmp_path, TINY_TEXT.replace("sampling: {persons: 10}", "sampling: {temperature: {spo2: 0.5}}"))
        )


def test_summary_temperature_defaults_to_the_days_and_names_channels(tmp_path):
    days_only = "sampling: {temperature: {steps: 0.5}}"
    recipe = load_recipe(write(tmp_path, TINY_TEXT.replace("sampling: {persons: 10}", days_only)))
    assert recipe.sampling.summary_temperatures(list(recipe.channels)) == [1.0, 1.0, 0.5]
    both = "sampling: {temperature: {steps: 0.5}, summary_temperature: 1.4}"
    recipe = load_recipe(write(tmp_path, TINY_TEXT.replace("sampling: {persons: 10}", both)))
    assert recipe.sampling.summary_temperatures(list(recipe.channels)) == [1.4, 1.4, 1.4]
    for wrong, message in (
        ("{spo2: 1.2}", "sampling.summary_temperature names 'spo2', which is not a channel"),
        ("-1", "temperatures must be 0 .the most likely bin. or finite numbers >= 0.001, got -1"),
        ("1.0e-46", "finite numbers >= 0.001, got 1e-46"),
    ):
        text = TINY_TEXT.replace("sampling: {persons: 10}", f"sampling: {{summary_temperature: {wrong}}}")
        with pytest.raises(SynthwearError, match=message):
            load_recipe(write(tmp_path, text))


def test_persistence_is_a_correlation_per_channel_zero_where_unnamed(tmp_path):
    given = "sampling: {persistence: {resting_hr: 0.3, steps: -0.1}}"
    recipe = load_recipe(write(tmp_path, TINY_TEXT.replace("sampling: {persons: 10}", given)))
    assert recipe.sampling.persistences(list(recipe.channels)) == [0.3, 0.0, -0.1]
    assert load_recipe(write(tmp_path, TINY_TEXT)).sampling.persistences(list(recipe.channels)) == [0.0] * 3
    for wrong, message in (
        ("{spo2: 0.3}", "sampling.persistence names 'spo2', which is not a channel"),
        ("1", "persistence must be a correlation strictly between -1 and 1, got 1"),
        ("{steps: -1.5}", "strictly between -1 and 1, got -1.5"),
        (".nan", "persistence.* should be a finite number"),
    ):
        text = TINY_TEXT.replace("sampling: {persons: 10}", f"sampling: {{persistence: {wrong}}}")
        with pytest.raises(SynthwearError, match=message):
            load_recipe(write(tmp_path, text))


def test_persistence_auto_takes_the_models_fitted_values_and_is_refused_under_privacy(tmp_path):
    text = TINY_TEXT.replace("sampling: {persons: 10}", "sampling: {persistence: auto}")
    recipe = load_recipe(write(tmp_path, text))
    assert recipe.sampling.persistences(list(recipe.channels), [0.2, -0.1, 0.0]) == [0.2, -0.1, 0.0]
    with pytest.raises(SynthwearError, match="holds no fitted persistence"):
        recipe.sampling.persistences(list(recipe.channels))
    with pytest.raises(SynthwearError, match="persistence: auto does not apply with privacy"):
        parse_recipe({**recipe.to_dict(), "privacy": {"target_epsilon": 4.0}})
    with pytest.raises(SynthwearError, match="a mapping per channel or auto .got 'automatic'"):
        load_recipe(write(tmp_path, text.replace("auto", "automatic")))


def test_a_summary_of_the_person_needs_a_summary_day(tmp_path):
    windows = "windows: {days: 7, stride: 7, summary: true}"
    person = TINY_TEXT.replace(windows, "windows: {days: 7, stride: 7, summary: true, summary_of: person}")
    assert load_recipe(write(tmp_path, person)).windows.summary_of == "person"
    with pytest.raises(SynthwearError, match="summary_of: person needs windows.summary: true"):
        load_recipe(write(tmp_path, person.replace("summary: true", "summary: false")))


def test_a_spread_is_a_second_summary_day(tmp_path):
    windows = "windows: {days: 7, stride: 7, summary: true}"
    spread = TINY_TEXT.replace(windows, "windows: {days: 7, stride: 7, summary: true, spread: true}")
    assert load_recipe(write(tmp_path, spread)).windows.spread
    with pytest.raises(SynthwearError, match="windows.spread needs windows.summary: true"):
        load_recipe(write(tmp_path, spread.replace("summary: true", "summary: false")))


def test_a_spread_may_name_its_channels(tmp_path):
    windows = "windows: {days: 7, stride: 7, summary: true}"
    spread = TINY_TEXT.replace(windows, "windows: {days: 7, stride: 7, summary: true, spread: [steps]}")
    assert load_recipe(write(tmp_path, spread)).without_spread() == ("resting_hr", "sleep_minutes")
    assert load_recipe(write(tmp_path, spread.replace("[steps]", "true"))).without_spread() == ()
    with pytest.raises(SynthwearError, match="windows.spread names 'step', which is not a channel"):
        load_recipe(write(tmp_path, spread.replace("[steps]", "[step]")))
    with pytest.raises(SynthwearError, match="not an empty list"):
        load_recipe(write(tmp_path, spread.replace("[steps]", "[]")))
    with pytest.raises(SynthwearError, match=r"'windows.spread': names a channel twice \(got \['steps', 'steps'\]\)"):
        load_recipe(write(tmp_path, spread.replace("[steps]", "[steps, steps]")))
    for value in ("steps", "yes", "[1]"):
        with pytest.raises(SynthwearError, match=r"'windows.spread': must be true, false or a list of channels"):
            load_recipe(write(tmp_path, spread.replace("[steps]", value)))
