"""benchmarks/privacy_utility.py --quick: the smoke test of the privacy-utility curve (its full run is
in docs/privacy.md). The base, DP from scratch and DP fine-tuning are scored on the same unseen persons."""

import json
import math

import pytest
from cohorts import REPO

from synthwear.privacy.plan import expected_fidelity


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import privacy_utility

        out = tmp_path_factory.mktemp("privacy_utility")
        privacy_utility.main(["--quick", "--epsilons", "3", "--compare-at", "0", "--out", str(out)])
        return (
            json.loads((out / "results.json").read_text()),
            (out / "table.md").read_text(),
            json.loads((out / "curve.json").read_text()),
        )
    finally:
        sys.path.remove(str(REPO / "benchmarks"))


def test_each_fold_holds_out_other_persons_and_every_arm_is_scored_on_them(quick):
    results, _, _ = quick
    [cohort] = results["cohorts"]
    assert cohort["name"] == "fitbit-crowdsourced" and len(cohort["folds"]) == 2
    assert sum(fold["holdout_persons"] for fold in cohort["folds"]) <= cohort["meta"]["persons"]
    for fold in cohort["folds"]:
        assert set(fold["rows"]) == {
            "base",
            "scratch, ε = 3",
            "fine-tune biases, ε = 3",
            "ceiling: real training persons",
        }
        tuned = fold["rows"]["fine-tune biases, ε = 3"]
        assert 0 < tuned["epsilon_spent"] <= 3 and 0 <= tuned["discriminative"] <= 0.5
        assert 0 <= tuned["auc.white_box_likelihood"] <= 1 and tuned["ci_holds_half.white_box_likelihood"] in (0.0, 1.0)


def test_the_curve_is_what_privacy_plan_reads(quick):
    _, table, curve = quick
    arms = {(row["arm"], row["epsilon"]) for row in curve["rows"]}
    assert arms == {("base", None), ("scratch", 3.0), ("fine-tune biases", 3.0)}
    assert curve["command"].startswith("python benchmarks/privacy_utility.py --quick")
    cells = expected_fidelity(curve, persons=30, epsilon=3.0)
    assert {cell["arm"] for cell in cells} == {"base", "scratch", "fine-tune biases"}
    assert all(not math.isnan(cell["discriminative"]["mean"]) for cell in cells)
    assert "| fine-tune biases, ε = 3 |" in table and "| base |" in table
