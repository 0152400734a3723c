"""The Python front door: fit, sample, evaluate, save and load in a few lines, on real shipped data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from cohorts import REPO

from synthwear import Synthesizer, SynthwearError

LIFESNAPS = REPO / "synthwear" / "datasets" / "lifesnaps" / "daily.csv"
CHANNELS = {
    "resting_hr": {"range": [35, 115], "decimals": 1},
    "sleep_minutes": {"range": [0, 960]},
    "steps": {"range": [0, 40000]},
}
SMALL = {  # the tiny recipe's model: the API, not the model, is under test
    "encoder": {"name": "binning", "bins": 20},
    "windows": {"days": 7, "stride": 7, "summary": True},
    "generator": {"name": "transformer", "n_layer": 1, "n_head": 2, "n_embd": 16, "ordinal": 4, "relative": 2},
    "training": {"epochs": 2, "batch_size": 64, "patience": 2},
    "sampling": {"persons": 30},
    "evaluation": {"evaluators": [{"name": "marginals"}, {"name": "discriminative"}], "max_windows": 200},
}


@pytest.fixture(scope="module")
def daily() -> pd.DataFrame:
    """The shipped LifeSnaps cohort, read as a notebook would read it."""
    return pd.read_csv(LIFESNAPS, parse_dates=["date"])


@pytest.fixture(scope="module")
def fitted(daily) -> Synthesizer:
    return Synthesizer(channels=CHANNELS, **SMALL).fit(daily, progress=False)


def test_a_notebook_fits_samples_evaluates_saves_and_loads(fitted, daily, tmp_path):
    cohort = fitted.sample(persons=12, days=30, seed=4)
    assert list(cohort.columns) == ["person_id", "date", *CHANNELS]
    assert cohort["person_id"].nunique() == 12 and len(cohort) == 12 * 30
    assert cohort["resting_hr"].between(35, 115).all() and cohort["steps"].between(0, 40000).all()

    report = fitted.evaluate()  # against the persons fit held out
    assert set(report.metrics) == {"marginals", "discriminative"} and report.failures == {}
    assert 0 <= report.metrics["discriminative"]["synthetic"]["score"] <= 0.5
    assert {"metric", "synthetic", "ceiling", "floor", "verdict"} <= set(report.verdicts().columns)
    page = report.to_html(tmp_path / "report.html").read_text()
    assert "<h2>Synthetic cohort</h2>" in page and "30 persons × 7 days" in page  # the recipe's sampling
    assert fitted.record["data"]["persons"] == daily["person_id"].nunique()

    fitted.save(tmp_path / "model")
    again = Synthesizer.load(tmp_path / "model")
    pd.testing.assert_frame_equal(again.sample(persons=5, days=9, seed=2), fitted.sample(persons=5, days=9, seed=2))
    assert again.record["training"] == fitted.record["training"]


def test_the_recipes_persistence_reaches_the_sampler_and_its_record(fitted):
    import copy

    persistent = copy.copy(fitted)
    persistent.record = copy.deepcopy(fitted.record)
    sampling = fitted.recipe.sampling.model_copy(update={"persistence": {"resting_hr": 0.9}})
    persistent.recipe = fitted.recipe.model_copy(update={"sampling": sampling})
    plain = fitted.sample_array(persons=100, days=7, seed=1)
    held = persistent.sample_array(persons=100, days=7, seed=1)
    assert persistent.record["sampling"]["persistence"] == {"resting_hr": 0.9}
    assert not np.array_equal(plain[..., 0], held[..., 0])


def test_persistence_auto_is_fitted_by_fit_kept_by_save_and_used_by_sample(daily, tmp_path):
    auto = Synthesizer(channels=CHANNELS, **{**SMALL, "sampling": {"persons": 30, "persistence": "auto"}})
    auto.fit(daily, progress=False)
    fitted = auto.record["persistence_fitted"]
    assert list(fitted) == list(CHANNELS) and all(-0.9 < rho < 0.9 for rho in fitted.values())
    assert auto.fitted.persistence == list(fitted.values())
    auto.save(tmp_path / "model")
    again = Synthesizer.load(tmp_path / "model")
    assert again.fitted.persistence == auto.fitted.persistence
    start = np.full(50, np.datetime64("2021-01-01"))
    sampled = again.sample_array(persons=50, days=7, seed=3, start=start)
    held = again.fitted.generate(50, 7, seed=3, start=start, persistence=again.fitted.persistence)
    np.testing.assert_array_equal(sampled, held)
    assert not np.array_equal(sampled, again.fitted.generate(50, 7, seed=3, start=start))
    assert again.record["sampling"]["persistence"] == "auto"


def test_the_report_page_names_the_data_it_was_fitted_on(fitted, tmp_path):
    page = fitted.evaluate().to_html(tmp_path / "report.html").read_text()
    assert "Synthetic wearable data from the DataFrame" in page  # fit was handed a DataFrame, not a file
    assert "<h2>Training</h2>" in page


def test_fit_is_reproducible_and_leaves_the_callers_random_state_alone(daily):
    torch.manual_seed(123)
    before = torch.get_rng_state()
    first = Synthesizer(channels=CHANNELS, **SMALL).fit(daily, progress=False)
    assert torch.equal(torch.get_rng_state(), before)
    second = Synthesizer(channels=CHANNELS, **SMALL).fit(daily, progress=False)
    for (name, a), b in zip(first.model.generator.state_dict().items(), second.model.generator.state_dict().values()):
        assert torch.equal(a, b), name


def test_privacy_is_a_keyword_of_fit(daily):
    private = Synthesizer(channels=CHANNELS, **SMALL)
    private.fit(daily, epsilon=3.0, progress=False)
    record = private.record["privacy"]
    assert record["target_epsilon"] == 3.0 and 0 < record["epsilon"] <= 3.0  # the accountant's figure
    assert record["train_persons"] == private.record["split"]["train"]
    assert private.recipe.privacy is not None and Synthesizer(channels=CHANNELS, **SMALL).recipe.privacy is None


def test_a_recipe_of_several_trainings_fits_privately_as_one_without_fitting_persistence(daily):
    """Each further candidate would spend the budget again: fit(epsilon=) trains once; persistence
    fitted to the training persons would read them outside the accountant: independent draws."""
    several = {**SMALL, "training": {**SMALL["training"], "candidates": 3}, "sampling": {"persistence": "auto"}}
    private = Synthesizer(channels=CHANNELS, **several).fit(daily, epsilon=3.0, progress=False)
    assert private.recipe.training.candidates == 1 and "candidates" not in private.record
    assert private.recipe.sampling.persistence == 0.0 and private.fitted.persistence is None
    assert private.record["privacy"]["target_epsilon"] == 3.0


def test_priming_continues_each_given_person(fitted, daily):
    june = daily[daily["date"].between("2021-06-01", "2021-06-05")]
    persons = sorted(june.groupby("person_id").filter(lambda days: len(days) == 5)["person_id"].unique())[:3]
    given = june[june["person_id"].isin(persons)]
    continued = fitted.sample(prime=given, days=12, seed=0)
    assert sorted(continued["person_id"].unique()) == persons and len(continued) == 3 * 12
    first = continued[continued["person_id"] == persons[0]].reset_index(drop=True)
    real = given[given["person_id"] == persons[0]].set_index("date")
    assert first["date"].iloc[0] == pd.Timestamp("2021-06-01") and first["date"].iloc[-1] == pd.Timestamp("2021-06-12")
    for day, row in real.iterrows():  # the given days are kept as they were
        kept = first.set_index("date").loc[day, list(CHANNELS)].to_numpy(float)
        np.testing.assert_array_equal(
            np.nan_to_num(kept, nan=-1), np.nan_to_num(row[list(CHANNELS)].to_numpy(float), nan=-1)
        )


def test_primed_persons_of_different_lengths_are_refused(fitted, daily):
    june = daily[daily["date"].between("2021-06-01", "2021-06-05")]
    one, two = sorted(june.groupby("person_id").filter(lambda days: len(days) == 5)["person_id"].unique())[:2]
    given = pd.concat(
        [june[june["person_id"] == one], june[(june["person_id"] == two) & (june["date"] <= "2021-06-03")]]
    )
    with pytest.raises(SynthwearError, match="every primed person needs the same number of days"):
        fitted.sample(prime=given, days=10)


def test_a_continuation_past_the_last_date_a_table_holds_is_refused_before_drawing(fitted, daily):
    """Written, such a cohort could be read back by no one (pandas' dates end on 2262-04-11)."""
    person = daily[daily["person_id"] == daily["person_id"].iloc[0]].head(5).copy()
    person["date"] = pd.date_range("2262-03-20", periods=5)
    with pytest.raises(SynthwearError, match=r"^prime: 30 days would run to 2262-04-18, past 2262-04-11"):
        fitted.sample(prime=person, days=30)
    assert fitted.sample(prime=person, days=23)["date"].max() == pd.Timestamp("2262-04-11")


def test_a_loaded_synthesizer_is_evaluated_against_real_persons_it_is_given(fitted, daily, tmp_path):
    loaded = Synthesizer.load(fitted.save(tmp_path / "model"))
    with pytest.raises(SynthwearError, match="pass train="):
        loaded.evaluate()
    ids = sorted(daily["person_id"].unique())
    report = loaded.evaluate(daily[daily["person_id"].isin(ids[:10])], train=daily[daily["person_id"].isin(ids[10:])])
    assert report.failures == {}


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda s, d: s.fit(d.drop(columns="steps"), progress=False), "the DataFrame: missing column 'steps'"),
        (lambda s, d: s.fit(d.to_dict(), progress=False), "expected a pandas DataFrame, got dict"),
        (lambda s, d: s.sample(persons=3), "not fitted yet"),
        (lambda s, d: s.fit(d, delta=1e-5, progress=False), "delta= needs epsilon="),
    ],
    ids=["missing-column", "not-a-frame", "unfitted", "delta-alone"],
)
def test_misuse_is_one_line(daily, call, message):
    with pytest.raises(SynthwearError, match=message):
        call(Synthesizer(channels=CHANNELS, **SMALL), daily)


def test_construction_is_validated_like_a_recipe_file():
    with pytest.raises(SynthwearError, match="unknown key 'training.epoch'"):
        Synthesizer(channels=CHANNELS, training={"epoch": 3})
    with pytest.raises(SynthwearError, match="give a recipe or recipe sections"):
        Synthesizer({"name": "x", "channels": CHANNELS}, training={"epochs": 3})
    with pytest.raises(SynthwearError, match="training.device 'cuda:9"):
        Synthesizer(channels=CHANNELS, device="cuda:9")


def test_from_recipe_reads_the_file_and_keeps_its_data_source():
    synth = Synthesizer.from_recipe(REPO / "recipes" / "tiny.yaml", device="cpu")
    assert synth.recipe.name == "tiny" and synth.recipe.data.dataset == "lifesnaps"
    assert synth.recipe.training.device == "cpu" and synth.device.type == "cpu"
    assert synth.recipe.source == REPO / "recipes" / "tiny.yaml"  # relative data paths resolve against it


def test_a_model_folder_without_its_fit_record_reads_the_run_json_above_it_or_says_what_is_missing(
    fitted, daily, tmp_path
):
    import json

    folder = fitted.save(tmp_path / "run" / "model")
    (folder / "fit.json").unlink()  # a run folder written before fit.json existed
    (tmp_path / "run" / "run.json").write_text(json.dumps(fitted.record, default=str))
    assert Synthesizer.load(folder).record["data"]["persons"] == fitted.record["data"]["persons"]
    (tmp_path / "run" / "run.json").unlink()
    bare = Synthesizer.load(folder)
    ids = sorted(daily["person_id"].unique())
    report = bare.evaluate(daily[daily["person_id"].isin(ids[:10])], train=daily[daily["person_id"].isin(ids[10:])])
    with pytest.raises(SynthwearError, match="the page needs the training record"):
        report.to_html(tmp_path / "page.html")
    assert not (tmp_path / "page.html").exists()


@pytest.mark.parametrize(
    "record, expected", [('{"data": ', "cannot be read as JSON"), ("[1, 2]", "expected a JSON object, found list")]
)
def test_a_damaged_fit_record_is_one_line(tmp_path, record, expected):
    import shutil

    folder = shutil.copytree(REPO / "synthwear" / "bases" / "lifesnaps", tmp_path / "model")  # a model, no fit
    (folder / "fit.json").write_text(record)
    with pytest.raises(SynthwearError, match=f"{folder / 'fit.json'}: {expected}"):
        Synthesizer.load(folder, device="cpu")


# --- calendar and gaps, learned ------------------------------------------------------------------
def weekly_cohort(persons: int = 40, days: int = 84, seed: int = 0) -> pd.DataFrame:
    """Persons who walk 5,000 steps more on Saturdays and miss sleep in runs of days (a third of them)."""
    rng = np.random.default_rng(seed)
    dates = pd.Timestamp("2022-01-03") + pd.to_timedelta(np.arange(days), "D")  # starts on a Monday
    frames = []
    for p in range(persons):
        first = int(rng.integers(0, 7))
        level = rng.normal([62, 420, 8000], [5, 30, 1500])
        values = level + rng.normal(0, [1.5, 40, 1500], (days, 3))
        values[:, 2] += np.where(dates.weekday == 5, 5000, 0)
        asleep_missing = np.repeat(rng.random(days // 3) < 1 / 3, 3)
        values[asleep_missing, 1] = np.nan
        frame = pd.DataFrame(values.round(1), columns=list(CHANNELS))
        frame.insert(0, "date", dates)
        frame.insert(0, "person_id", f"p{p:02d}")
        frames.append(frame.iloc[first:])
    return pd.concat(frames, ignore_index=True)


def saturday_effect_and_gaps(frame: pd.DataFrame) -> tuple[float, float]:
    saturday = frame["date"].dt.weekday == 5
    weekdays = frame["date"].dt.weekday < 5
    return frame.loc[saturday, "steps"].mean() - frame.loc[weekdays, "steps"].mean(), frame[
        "sleep_minutes"
    ].isna().mean()


@pytest.mark.parametrize("calendar", [["weekday"], []])
def test_weekday_effects_and_gaps_are_learned_only_when_asked_for(calendar):
    real = weekly_cohort()
    recipe = {**SMALL, "windows": {"days": 7, "stride": 1, "summary": True, "gaps": True, "calendar": calendar}}
    recipe["training"] = {"epochs": 12, "batch_size": 64, "patience": 12, "learning_rate": 0.003}
    synthetic = Synthesizer(channels=CHANNELS, **recipe).fit(real, progress=False).sample(300, 28, seed=1)
    real_effect, real_gaps = saturday_effect_and_gaps(real)
    effect, gaps = saturday_effect_and_gaps(synthetic)
    assert abs(gaps - real_gaps) < 0.08  # about a third of sleep days missing, as in the data
    assert synthetic["resting_hr"].isna().mean() < 0.01  # a channel never missing stays (nearly) complete
    if calendar:
        assert 0.6 < effect / real_effect < 1.4
    else:
        assert abs(effect / real_effect) < 0.3  # without the weekday the week is flat
    starts = synthetic.groupby("person_id")["date"].min()
    assert set(starts) <= set(real.groupby("person_id")["date"].min())  # first days drawn from the real ones


# --- person attributes ---------------------------------------------------------------------------
def grouped_cohort(persons: int = 40, days: int = 42, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Walkers (group 'a', 12,000 steps a day) and sitters ('b', 4,000), with a persons table saying which."""
    rng = np.random.default_rng(seed)
    groups = np.where(np.arange(persons) % 2 == 0, "a", "b")
    dates = pd.Timestamp("2022-01-03") + pd.to_timedelta(np.arange(days), "D")
    frames = []
    for p, group in enumerate(groups):
        steps = (12000 if group == "a" else 4000) + rng.normal(0, 800, days)
        frame = pd.DataFrame(
            {
                "resting_hr": rng.normal(62, 2, days).round(1),
                "sleep_minutes": rng.normal(420, 30, days).round(),
                "steps": steps.round(),
            }
        )
        frame.insert(0, "date", dates)
        frame.insert(0, "person_id", f"p{p:02d}")
        frames.append(frame)
    table = pd.DataFrame(
        {"person_id": [f"p{p:02d}" for p in range(persons)], "group": groups, "age": rng.integers(20, 70, persons)}
    )
    return pd.concat(frames, ignore_index=True), table


@pytest.fixture(scope="module")
def grouped() -> tuple[Synthesizer, pd.DataFrame, pd.DataFrame]:
    daily, table = grouped_cohort()
    recipe = {**SMALL, "windows": {"days": 7, "stride": 1, "summary": True}}
    recipe["training"] = {"epochs": 10, "batch_size": 64, "patience": 10, "learning_rate": 0.003}
    return Synthesizer(channels=CHANNELS, **recipe).fit(daily, persons=table, progress=False), daily, table


def test_sequences_follow_the_attributes_they_are_generated_with(grouped):
    synth, _, _ = grouped
    for group, level in (("a", 12000), ("b", 4000)):
        daily, persons = synth.sample_cohort(100, 14, seed=2, where=[f"group == '{group}'"])
        assert (persons["group"] == group).all() and len(persons) == 100
        assert set(daily["person_id"]) == set(persons["person_id"])
        assert abs(daily["steps"].mean() - level) < 2000


def test_quotas_and_seed_tables_give_exactly_the_persons_asked_for(grouped):
    synth, _, _ = grouped
    _, persons = synth.sample_cohort(50, 7, seed=1, quotas=["group=a:0.3"])
    assert (persons["group"] == "a").sum() == 15 and (persons["group"] == "b").sum() == 35
    seeds = pd.DataFrame({"group": ["b", "", "a"], "age": ["", "33", ""]})
    daily, persons = synth.sample_cohort(seed=1, days=7, seed_table=seeds)
    assert len(persons) == 3 and persons["group"].iloc[0] == "b" and persons["group"].iloc[2] == "a"
    assert float(persons["age"].iloc[1]) == 33 and daily["person_id"].nunique() == 3


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (["sex == 'f'"], "unknown column 'sex'"),
        (["group == 'c'"], "'c' is not a category of 'group'"),
        (["group = 'a'"], "=="),
    ],
)
def test_a_bad_condition_is_one_line_before_anything_is_generated(grouped, where, message):
    with pytest.raises(SynthwearError, match=message) as raised:
        grouped[0].sample(10, 7, where=where)
    assert "\n" not in str(raised.value)


def test_attributes_are_saved_with_the_model(grouped, tmp_path):
    synth = grouped[0]
    synth.save(tmp_path / "m")
    loaded = Synthesizer.load(tmp_path / "m")
    assert loaded.fitted.attributes.columns == ["group", "age"]
    a, b = synth.sample_cohort(20, 7, seed=4), loaded.sample_cohort(20, 7, seed=4)
    pd.testing.assert_frame_equal(a[0], b[0])
    pd.testing.assert_frame_equal(a[1], b[1])


def test_a_model_without_attributes_refuses_conditions(fitted):
    with pytest.raises(SynthwearError, match="no person attributes"):
        fitted.sample(10, 7, where=["gender == 'female'"])
    assert fitted.sample_cohort(5, 7)[1] is None


def test_a_persons_table_with_a_daily_column_name_a_repeated_id_or_none_of_the_training_persons_is_refused():
    daily, table = grouped_cohort(persons=12, days=21)
    recipe = {**SMALL, "training": {"epochs": 1}}
    for name in ("date", "steps"):  # the cohort's tables are written beside each other: one date, one steps
        with pytest.raises(SynthwearError, match=f"column '{name}' has the name of a column of the daily table"):
            Synthesizer(channels=CHANNELS, **recipe).fit(
                daily, persons=table.rename(columns={"group": name}), progress=False
            )
    with pytest.raises(SynthwearError, match="appears twice"):
        Synthesizer(channels=CHANNELS, **recipe).fit(daily, persons=pd.concat([table, table.iloc[:1]]), progress=False)
    with pytest.raises(SynthwearError, match="none of the training persons"):
        Synthesizer(channels=CHANNELS, **recipe).fit(
            daily, persons=table.assign(person_id="x" + table["person_id"]), progress=False
        )


def test_under_differential_privacy_the_attributes_are_left_out():
    daily, table = grouped_cohort(persons=12, days=21)
    synth = Synthesizer(channels=CHANNELS, **{**SMALL, "training": {"epochs": 1}})
    synth.fit(daily, persons=table, epsilon=50, progress=False)
    assert synth.fitted.attributes is None and "attributes" not in synth.record


def test_conditions_of_the_recipe_are_checked_before_training_and_never_beside_a_seed_table(grouped):
    daily, table = grouped_cohort(persons=12, days=21)
    recipe = {**SMALL, "training": {"epochs": 50}, "sampling": {"where": ["group == 'c'"]}}
    with pytest.raises(SynthwearError, match=r"sampling.where \"group == 'c'\": 'c' is not a category of 'group'"):
        Synthesizer(channels=CHANNELS, **recipe).fit(daily, persons=table, progress=False)
    badly_written = {**recipe, "sampling": {"where": ["group = 'a'"]}}
    with pytest.raises(SynthwearError, match=r"sampling.where \"group = 'a'\": '=' is not a comparison") as raised:
        Synthesizer(channels=CHANNELS, **badly_written).fit(daily, persons=table, progress=False)
    assert "--where" not in str(raised.value)
    with pytest.raises(SynthwearError, match="need person attributes"):
        Synthesizer(channels=CHANNELS, **recipe).fit(daily, progress=False)
    with pytest.raises(SynthwearError, match="without where or quotas"):
        grouped[0].sample(days=7, where=["group == 'a'"], seed_table=pd.DataFrame({"group": ["b"]}))
    with pytest.raises(SynthwearError, match="no rows"):
        grouped[0].sample(days=7, seed_table=pd.DataFrame({"group": []}))
    with pytest.raises(SynthwearError, match="has a 'person_id' column, but its rows are persons still to generate"):
        grouped[0].sample(days=7, seed_table=pd.DataFrame({"person_id": ["alice", "alice"], "group": ["a", "b"]}))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"encoder": {"name": "binning", "bins": 1_000_000_000}}, "binning needs 2 to 10,000 bins, got 1,000,000,000"),
        (
            {"generator": {**SMALL["generator"], "n_head": "four"}},
            "generator: generator 'transformer': option 'n_head'",
        ),
    ],
)
def test_model_options_are_refused_before_the_data_is_read(daily, monkeypatch, change, expected):
    """A billion bins would ask the embedding for 64 GB after the data is read; refused first, in one line."""
    import synthwear.synthesizer

    def unread(*args, **kwargs):
        raise AssertionError("the data was read before the options were checked")

    monkeypatch.setattr(synthwear.synthesizer, "frame_data", unread)
    with pytest.raises(SynthwearError, match=expected):
        Synthesizer(channels=CHANNELS, **{**SMALL, **change}).fit(daily, progress=False)
