"""Conditions on what a person's days do, met by drawing again: every person meets them, the persons
who met them at once are kept as drawn, and a rate too low to finish is an error, not a hang."""

import numpy as np
import pytest
import torch
from cohorts import REPO

from synthwear.behaviour import EVIDENCE, Acceptance, batches_meeting, day_conditions, statistic
from synthwear.conditions import Conditions
from synthwear.errors import SynthwearError
from synthwear.plugins import default_registry
from synthwear.recipe import load_recipe
from synthwear.steps import build_model

CHANNELS = ["resting_hr", "sleep_minutes", "steps"]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(load_recipe(REPO / "recipes" / "tiny.yaml"), default_registry(), torch.device("cpu"))


def conditions(*where: str):
    return day_conditions(Conditions(where), CHANNELS)


def test_statistics_skip_missing_days_and_a_person_without_any_never_meets():
    values = np.array([[[1.0, 0, 0], [3.0, 0, 0], [np.nan, 0, 0]], [[np.nan, 0, 0]] * 3])
    assert statistic("mean", values[..., 0])[0] == 2.0 and np.isnan(statistic("mean", values[..., 0])[1])
    assert statistic("sd", values[..., 0])[0] == pytest.approx(np.sqrt(2))
    [low] = conditions("1 <= mean(resting_hr) <= 2")
    assert low.met(values).tolist() == [True, False]
    [high] = conditions("max(resting_hr) != 3")
    assert high.met(values).tolist() == [False, False]


def test_every_person_meets_the_conditions_and_those_who_met_them_at_once_are_kept(model):
    plain = model.generate(40, 7, seed=3, batch_size=16)
    middle = float(np.median(np.nanmean(plain[..., 2], axis=1)))
    wanted = conditions(f"mean(steps) > {middle}", "min(resting_hr) > 0")
    tally = Acceptance()
    values = np.concatenate(list(batches_meeting(model, wanted, 40, 7, seed=3, tally=tally, batch_size=16)))
    assert values.shape == plain.shape and (np.nanmean(values[..., 2], axis=1) > middle).all()
    kept_at_once = np.nanmean(plain[..., 2], axis=1) > middle
    np.testing.assert_array_equal(values[kept_at_once], plain[kept_at_once])
    assert tally.kept == 40 and tally.drawn > 40 + (~kept_at_once).sum() - 1  # each person kept once
    assert 0 < tally.rate < 1 and tally.drawn == round(tally.kept / tally.rate)
    again = np.concatenate(list(batches_meeting(model, wanted, 40, 7, seed=3, batch_size=16)))
    np.testing.assert_array_equal(values, again)  # the same seed, the same cohort


def test_a_person_drawn_again_keeps_their_first_day_and_attributes(model):
    starts = np.array(["2021-01-04", "2021-06-05", "2022-02-06"], dtype="datetime64[D]")
    wanted = conditions("mean(sleep_minutes) >= 0")  # met by any day observed: a redraw only for gaps
    values = np.concatenate(list(batches_meeting(model, wanted, 3, 7, seed=0, start=starts)))
    assert values.shape == (3, 7, 3)
    with pytest.raises(SynthwearError, match="acceptance rate 0.0% .* too low to finish within 100 draws"):
        list(batches_meeting(model, conditions("mean(steps) > 1e9"), 3, 7, seed=0, start=starts))


@pytest.mark.parametrize(
    "where, problem",
    [
        ("mean(spo2) < 90", "'spo2' is not a channel"),
        ("mean(steps) == 'high'", "compare it with numbers"),
        ("mean(steps) > 5 and steps < 3", "one condition per entry"),
    ],
)
def test_bad_conditions_on_days_are_one_line(where, problem):
    with pytest.raises(SynthwearError, match=problem):
        conditions(where)


def test_a_spread_over_one_day_is_refused_before_drawing_and_allowed_over_two():
    with pytest.raises(
        SynthwearError,
        match=r"--where 'sd\(steps\) > 100': a standard deviation needs at least 2 days per person, not 1",
    ):
        day_conditions(Conditions(["sd(steps) > 100"]), CHANNELS, days=1)
    assert len(day_conditions(Conditions(["sd(steps) > 100", "mean(steps) > 100"]), CHANNELS, days=2)) == 2
    assert len(day_conditions(Conditions(["mean(steps) > 100"]), CHANNELS, days=1)) == 1


def test_a_recipes_condition_on_days_shapes_the_runs_cohort_and_is_recorded(tmp_path):
    import json

    import pandas as pd

    from synthwear.pipeline import run_recipe
    from synthwear.recipe import parse_recipe

    raw = load_recipe(REPO / "recipes" / "tiny.yaml").to_dict()
    raw["sampling"] |= {"persons": 12, "where": ["median(resting_hr) >= 60"]}
    raw["evaluation"]["evaluators"] = [{"name": "marginals"}]
    run_recipe(parse_recipe(raw, REPO / "recipes" / "tiny.yaml"), tmp_path / "run")
    cohort = pd.read_csv(tmp_path / "run" / "synthetic.csv")
    assert cohort["person_id"].nunique() == 12 and (cohort.groupby("person_id")["resting_hr"].median() >= 60).all()
    record = json.loads((tmp_path / "run" / "run.json").read_text())["sampling"]["conditions_on_days"]
    assert record["where"] == ["median(resting_hr) >= 60"] and record["kept"] == 12 and record["drawn"] >= 12
    raw["sampling"]["where"] = ["median(heart) >= 60"]
    with pytest.raises(SynthwearError, match="sampling.where 'median\\(heart\\) >= 60': 'heart' is not a channel"):
        run_recipe(parse_recipe(raw, REPO / "recipes" / "tiny.yaml"), tmp_path / "other")
    raw["sampling"]["where"] = ["mean(steps) > 100000"]  # the recipe's steps lie in 0..40000
    with pytest.raises(SynthwearError, match="no person can meet it; every steps value lies in 0..40000"):
        run_recipe(parse_recipe(raw, REPO / "recipes" / "tiny.yaml"), tmp_path / "other")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # refused before training: no checkpoint


def test_a_rate_under_one_percent_stops_once_enough_persons_were_drawn(model):
    """Not after a hundred draws for each of the persons asked for: a million for 10,000 persons."""
    tally = Acceptance()
    with pytest.raises(SynthwearError, match=r"acceptance rate 0.0% \(0 persons kept of 1,\d{3} drawn\)"):
        list(batches_meeting(model, conditions("min(steps) > 1e9"), 500, 7, seed=0, tally=tally))
    assert EVIDENCE <= tally.drawn < EVIDENCE + 500
