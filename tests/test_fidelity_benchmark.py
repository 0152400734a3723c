"""benchmarks/fidelity.py --quick: the smoke test of the benchmark that judges the generator (its
full run is in docs/benchmarks.md). Folds are of persons, every row is scored on unseen persons."""

import json

import numpy as np
import pytest
from cohorts import REPO


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import fidelity
        import peers

        out = tmp_path_factory.mktemp("fidelity")
        fidelity.main(
            ["--quick", "--out", str(out), "--variant", "plain heads: generator.ordinal=0 generator.relative=0"]
        )
        return json.loads((out / "results.json").read_text()), (out / "table.md").read_text(), peers.sdv_installed()
    finally:
        sys.path.remove(str(REPO / "benchmarks"))


def test_every_person_is_unseen_in_exactly_one_fold(quick):
    results, _, _ = quick
    folds = results["folds"]
    assert len(folds) == 2 and results["meta"]["persons"] == sum(f["holdout_persons"] for f in folds)


def test_rows_and_columns(quick):
    results, table, with_sdv = quick
    rows = results["table"]
    expected = {
        "synthwear fitbit",
        "synthwear, plain heads",
        "ceiling: real training persons",
        "floor: independent days",
    }
    assert expected <= set(rows)
    assert ("PARSynthesizer (1 epochs)" in rows) == with_sdv
    assert with_sdv or "PARSynthesizer rows skipped: SDV is not installed" in table
    synthwear, ceiling = rows["synthwear fitbit"], rows["ceiling: real training persons"]
    for column in ("discriminative", "tstr_mae", "near_copies", "variance_ratio.resting_hr", "lag1_error.steps"):
        mean, sd = synthwear[column]
        assert np.isfinite(mean) and sd >= 0
    assert ceiling["discriminative"][0] < synthwear["discriminative"][0]  # two epochs cannot match real persons
    assert ceiling["near_copies"] is None  # the training windows themselves: not a meaningful near-copy score
    assert "| synthwear fitbit |" in table and "mean ± sd over folds" in table


def test_a_variant_changes_only_the_settings_it_names():
    import sys

    from synthwear.recipe import load_recipe

    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from fidelity import variant
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    recipe = load_recipe(REPO / "recipes" / "fitbit.yaml")
    label, changed = variant(recipe, "no summary: windows.summary=false loss.smoothing=1.5")
    assert label == "no summary" and not changed.windows.summary and changed.loss.options == {"smoothing": 1.5}
    unchanged = recipe.to_dict()
    for section in ("windows", "loss"):
        unchanged.pop(section)
        assert changed.to_dict()[section] != recipe.to_dict()[section]
    assert {k: v for k, v in changed.to_dict().items() if k not in ("windows", "loss")} == unchanged
    with pytest.raises(SystemExit, match="not key=value"):
        variant(recipe, "broken: windows.summary")
