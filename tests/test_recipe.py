from pathlib import Path

import pytest
import yaml

from synthwear.errors import SynthwearError
from synthwear.recipe import load_recipe


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
