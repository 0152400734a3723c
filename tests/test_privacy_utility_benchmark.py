"""benchmarks/privacy_utility.py --quick: the smoke test of the privacy-utility curve (its full run is
in docs/privacy.md). The base, DP from scratch and DP fine-tuning are scored on the same unseen persons."""

import json
import math
import sys
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from cohorts import REPO

from synthwear.cohort import Cohort
from synthwear.privacy.plan import expected_fidelity
from synthwear.recipe import load_recipe


@pytest.fixture(scope="module")
def benchmark():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import peers
        import privacy_utility

        return privacy_utility, peers.mostlyai_installed()
    finally:
        sys.path.remove(str(REPO / "benchmarks"))


@pytest.fixture(scope="module")
def quick(benchmark, tmp_path_factory):
    privacy_utility, _ = benchmark
    out = tmp_path_factory.mktemp("privacy_utility")
    argv = ["--quick", "--epsilons", "3", "--compare-at", "0", "--mostly-minutes", "0.1", "--samples", "2"]
    argv += ["--out", str(out)]
    privacy_utility.main(argv)
    return (
        json.loads((out / "results.json").read_text()),
        (out / "table.md").read_text(),
        json.loads((out / "curve.json").read_text()),
    )


def test_each_fold_holds_out_other_persons_and_every_arm_is_scored_on_them(quick, benchmark):
    results, table, _ = quick
    [cohort] = results["cohorts"]
    assert cohort["name"] == "fitbit-crowdsourced" and len(cohort["folds"]) == 2
    assert sum(fold["holdout_persons"] for fold in cohort["folds"]) <= cohort["meta"]["persons"]
    _, mostly = benchmark
    for fold in cohort["folds"]:
        assert set(fold["rows"]) == {
            "base",
            "scratch, ε = 3",
            "fine-tune biases, ε = 3",
            "ceiling: real training persons",
        } | ({"MOSTLY AI TabularARGN, ε = 3"} if mostly else set())
        tuned = fold["rows"]["fine-tune biases, ε = 3"]
        assert 0 < tuned["epsilon_spent"] <= 3 and 0 <= tuned["discriminative"] <= 0.5
        assert 0 <= tuned["auc.white_box_likelihood"] <= 1 and tuned["ci_holds_half.white_box_likelihood"] in (0.0, 1.0)
    assert mostly or "- MOSTLY AI rows skipped: mostlyai-engine is not installed" in table


def test_the_curve_is_what_privacy_plan_reads(quick):
    _, table, curve = quick
    arms = {(row["arm"], row["epsilon"]) for row in curve["rows"]}
    assert arms == {("base", None), ("scratch", 3.0), ("fine-tune biases", 3.0)}
    assert curve["command"].startswith("python benchmarks/privacy_utility.py --quick")
    cells = expected_fidelity(curve, persons=30, epsilon=3.0)
    assert {cell["arm"] for cell in cells} == {"base", "scratch", "fine-tune biases"}
    assert all(not math.isnan(cell["discriminative"]["mean"]) for cell in cells)
    assert "| fine-tune biases, ε = 3 |" in table and "| base |" in table
    assert "scores averaged over 2 synthetic sample(s) per arm" in table


def test_the_scores_of_several_samples_are_averaged_and_a_score_no_sample_has_stays_none(benchmark, monkeypatch):
    privacy_utility, _ = benchmark
    each = iter([{"tstr_mae": 1.0, "discriminative": None}, {"tstr_mae": 3.0, "discriminative": None}])
    monkeypatch.setattr(privacy_utility, "scores", lambda context, target: next(each))
    assert privacy_utility.mean_scores(["first", "second"], "steps") == {"tstr_mae": 2.0, "discriminative": None}


def test_arms_keep_the_base_and_the_named_prefixes_and_refuse_to_drop_every_synthwear_arm(benchmark):
    privacy_utility, _ = benchmark
    recipe = load_recipe(REPO / "recipes" / "fitbit-crowdsourced-dp.yaml")
    arms = {"base": None, "scratch, ε = 3": recipe, "fine-tune all, ε = 3": recipe, "fine-tune heads, ε = 3": recipe}
    arms |= privacy_utility.mostly_arms([3.0], 2.0)
    assert privacy_utility.chosen(arms, None) == arms
    kept = privacy_utility.chosen(arms, ["fine-tune all", "MOSTLY"])
    assert list(kept) == ["base", "fine-tune all, ε = 3", "MOSTLY AI TabularARGN, ε = 3"]
    with pytest.raises(SystemExit, match="keeps no synthwear arm"):
        privacy_utility.chosen(arms, ["MOSTLY"])


def test_mostly_under_dp_splits_its_budget_and_without_dp_gets_none(benchmark):
    privacy_utility, _ = benchmark
    assert privacy_utility.MostlyArm(float("inf"), 1.0).privacy(1e-3) is None
    assert privacy_utility.MostlyArm(3.0, 1.0).privacy(1e-3) == {
        "max_epsilon": 3.0,
        "delta": 1e-3,
        "value_protection_epsilon": 0.3,
    }


def test_each_person_is_one_sequence_keyed_across_cohorts_day_by_day(benchmark):
    """MOSTLY AI's unit of privacy is the sequence: a person must be exactly one, with gaps as rows."""
    privacy_utility, _ = benchmark

    def cohort(persons: dict[str, list[str]]) -> Cohort:
        rows = [(p, pd.Timestamp(d), float(i)) for p, dates in persons.items() for i, d in enumerate(dates)]
        return Cohort.from_frame(pd.DataFrame(rows, columns=["person_id", "date", "steps"]), ["steps"])

    train = cohort({"a": ["2024-01-01", "2024-01-03"], "b": ["2024-02-01"]})
    validation = cohort({"c": ["2024-03-01", "2024-03-02"]})
    sequences = privacy_utility.person_sequences([train, validation])
    assert list(sequences["window"]) == [0, 0, 0, 1, 2, 2]
    np.testing.assert_array_equal(sequences["steps"], [0.0, np.nan, 1.0, 0.0, 0.0, 1.0])


def test_the_table_shows_the_largest_epsilon_spent_and_marks_a_row_over_its_budget(benchmark):
    """A peer's accountant may keep a model over the ε asked for; the mean over folds would hide it."""
    privacy_utility, _ = benchmark
    folds = [
        {
            "rows": {
                "fine-tune biases, ε = 1": {"epsilon_spent": e, "persistence_mae": 3.0},
                "MOSTLY AI TabularARGN, ε = 1": {"epsilon_spent": m, "persistence_mae": 3.0},
            }
        }
        for e, m in [(0.99, 0.95), (0.98, 1.31)]
    ]
    table = privacy_utility.aggregate(folds)
    assert table["fine-tune biases, ε = 1"]["epsilon_spent_max"] == 0.99
    lines = privacy_utility.markdown(
        "c", table, {"persons": 9, "simulated": False, "folds": 2, "stride": 7, "target": "x"}
    )
    ours, peer = (line for line in lines.splitlines() if "ε = 1 |" in line)
    assert "| 0.99 |" in ours and "(over)" not in ours
    assert "| 1.31 (over) |" in peer
    assert privacy_utility.asked_epsilon("base") is None and privacy_utility.asked_epsilon("x, ε = inf") == float("inf")


def test_the_table_says_how_often_dp_sgd_saw_a_training_person(benchmark):
    """At a fixed number of steps of about 64 persons, a cohort of 50,000 is seen less than once."""
    privacy_utility, _ = benchmark
    private = SimpleNamespace(record={"privacy": {"sample_rate": 1 / 625, "steps": 300, "epsilon": 3.0}})
    plain = SimpleNamespace(record={})
    rows = {"dp, ε = 3": private, "plain, ε = inf": plain}
    folds = [{"rows": {k: privacy_utility.trained(v, 0.0) | {"persistence_mae": 3.0} for k, v in rows.items()}}]
    table = privacy_utility.aggregate(folds)
    assert table["dp, ε = 3"]["steps_per_person"][0] == pytest.approx(0.48)
    assert table["plain, ε = inf"]["steps_per_person"] is None
    meta = {"persons": 9, "simulated": True, "folds": 1, "stride": 7, "target": "x"}
    header, _, dp, plain_row = privacy_utility.markdown("c", table, meta).splitlines()[2:6]
    column = header.split(" | ").index("steps per person")
    assert dp.split(" | ")[column] == "0.48 ± 0.00" and plain_row.split(" | ")[column] == "–"


def test_max_epochs_caps_only_the_non_private_arms_and_a_simulated_cohort_is_sized_by_its_users(benchmark):
    privacy_utility, _ = benchmark
    recipe = load_recipe(REPO / "recipes" / "fitbit-crowdsourced-dp.yaml")
    arms = privacy_utility.arm_recipes(recipe, [3.0, float("inf")], compare_at=0, quick=False)
    real = privacy_utility.for_cohort(arms, 32, simulated=False)
    assert real is arms  # the real cohort runs the recipe as written
    capped = privacy_utility.for_cohort(arms, 50_000, simulated=True, max_epochs=10)
    plain, private = capped["scratch, ε = inf"], capped["scratch, ε = 3"]
    assert plain.training.epochs == 10 and private.training.epochs == arms["scratch, ε = 3"].training.epochs
    assert private.privacy.sample_rate == 1 / 781 and plain.windows.stride == private.windows.stride == 7
    assert capped["base"] is None


def test_shipping_a_new_run_beside_the_shipped_curve_renews_only_its_cells(benchmark, tmp_path, monkeypatch):
    privacy_utility, _ = benchmark
    cell = {"cohort": "c", "simulated": False, "persons": 9, "epsilon": 3.0, "tstr": {"mean": 1.0}}
    shipped = {"command": "a; b", "commit": "x, y"}
    shipped["rows"] = [cell | {"arm": arm, "command": arm, "commit": "x"} for arm in ("base", "scratch")]
    new = {"command": "new run", "commit": "z", "rows": [cell | {"arm": "scratch", "tstr": {"mean": 2.0}}]}
    for name, curve in (("shipped", shipped), ("new", new)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "curve.json").write_text(json.dumps(curve))
    monkeypatch.setattr(privacy_utility, "SHIPPED_CURVE", tmp_path / "curve.json")
    privacy_utility.ship([tmp_path / "shipped", tmp_path / "new"])
    merged = json.loads((tmp_path / "curve.json").read_text())
    assert merged["command"] == "base; new run" and merged["commit"] == "x, z"  # the runs whose cells are kept
    rows = {row["arm"]: row for row in merged["rows"]}
    assert rows["base"]["command"] == "base" and rows["base"]["commit"] == "x"  # kept as it was measured
    assert rows["scratch"]["tstr"]["mean"] == 2.0 and rows["scratch"]["command"] == "new run"
