"""benchmarks/fidelity.py --quick: the smoke test of the benchmark that judges the generator (its
full run is in docs/benchmarks.md). Folds are of persons, every row is scored on unseen persons."""

import json

import numpy as np
import pandas as pd
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
            [
                "--quick",
                "--repeats",
                "2",
                "--out",
                str(out),
                "--variant",
                "plain heads: generator.ordinal=0 generator.relative=0",
                "--variant",
                "with persons: data.persons=true",
            ]
        )
        installed = {"sdv": peers.sdv_installed(), "mostly": peers.mostlyai_installed()}
        return json.loads((out / "results.json").read_text()), (out / "table.md").read_text(), installed
    finally:
        sys.path.remove(str(REPO / "benchmarks"))


def test_every_person_is_unseen_in_exactly_one_fold(quick):
    results, _, _ = quick
    folds = results["folds"]
    assert len(folds) == 2 and results["meta"]["persons"] == sum(f["holdout_persons"] for f in folds)


def test_rows_and_columns(quick):
    results, table, installed = quick
    rows = results["table"]
    expected = {
        "synthwear fitbit",
        "synthwear, plain heads",
        "synthwear, with persons",
        "ceiling: real training persons",
        "floor: independent days",
    }
    assert expected <= set(rows)
    assert ("PARSynthesizer (1 epochs)" in rows) == installed["sdv"]
    assert installed["sdv"] or "PARSynthesizer rows skipped: SDV is not installed" in table
    assert ("MOSTLY AI TabularARGN (0.2 min)" in rows) == installed["mostly"]
    assert installed["mostly"] or "MOSTLY AI TabularARGN rows skipped: mostlyai-engine is not installed" in table
    synthwear, ceiling = rows["synthwear fitbit"], rows["ceiling: real training persons"]
    for column in ("discriminative", "tstr_mae", "near_copies", "variance_ratio.resting_hr", "lag1_error.steps"):
        mean, sd = synthwear[column]
        assert np.isfinite(mean) and sd >= 0
    assert ceiling["discriminative"][0] < synthwear["discriminative"][0]  # two epochs cannot match real persons
    assert ceiling["near_copies"] is None  # the training windows themselves: not a meaningful near-copy score
    assert "| synthwear fitbit |" in table and "mean ± sd over folds" in table
    assert results["meta"]["repeats"] == 2 and "the mean of 2 trainings" in table
    for channel in ("resting_hr", "sleep_minutes", "steps"):  # persons over a year, and over real spans
        assert -1 <= synthwear[f"identity_year.{channel}"][0] <= 1
        assert -1 <= rows["the unseen persons themselves"][f"identity.{channel}"][0] <= 1
    assert synthwear["long_persons_per_s"][0] > 0
    identity_table = own_table(table, "| synthesizer | first/last block r")
    assert "| the unseen persons themselves |" in identity_table and "| floor" not in identity_table
    attributes = rows["synthwear, with persons"]  # subgroups only where the model has person attributes
    assert attributes["subgroups"][0] >= 2 and synthwear.get("subgroups") is None
    assert all(-1 <= attributes[f"subgroup_ks_shortfall.{c}"][0] <= 1 for c in ("resting_hr", "steps"))
    subgroup_table = own_table(table, "| synthesizer | worst subgroup KSComplement shortfall")
    assert "| synthwear, with persons |" in subgroup_table and "| synthwear fitbit |" not in subgroup_table
    named = {f"telltale.{f} {c}" for f in ("mean", "lag-1 AC") for c in ("resting_hr", "sleep_minutes", "steps")}
    assert named <= set(synthwear) and all(-0.5 <= synthwear[k][0] <= 0.5 for k in named)
    telltale_table = own_table(table, "| synthesizer | the 3 features that tell it")
    assert "| synthwear fitbit | " in telltale_table and "; " in telltale_table.splitlines()[2]


def own_table(text: str, header: str) -> str:
    """The markdown table that starts with ``header``, up to the blank line after it."""
    start = text.index(header)
    return text[start : text.index("\n\n", start)]


def identity_benchmark():
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import fidelity
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    return fidelity


def test_identity_compares_first_and_last_blocks_over_real_spans_and_over_a_year():
    """Persons whose level holds for 100 days and then is drawn anew: themselves over 70-day spans, not
    over a year; real persons shorter than three blocks do not count."""
    from synthwear.cohort import Cohort

    fidelity, rng = identity_benchmark(), np.random.default_rng(0)
    levels = rng.normal(60, 8, 40)
    frame = pd.DataFrame(
        [
            {
                "person_id": f"p{p}",
                "date": pd.Timestamp("2026-01-01") + pd.Timedelta(days=d),
                "hr": level + rng.normal(),
            }
            for p, level in enumerate(levels)
            for d in range(70 if p < 30 else 40)
        ]
    )
    real, spans = fidelity.recorded_identity(Cohort.from_frame(frame, ["hr"]), 21)
    assert list(spans) == [70] * 30 and real[0] > 0.95
    later = rng.normal(60, 8, 40)
    year = np.where(np.arange(365)[None, :] < 100, levels[:, None], later[:, None]) + rng.normal(size=(40, 365))
    found = fidelity.identity_scores(year[..., None], Cohort.from_frame(frame, ["hr"]), 21)
    assert found["identity.hr"] > 0.95 and abs(found["identity_year.hr"]) < 0.5


def test_telltales_name_the_feature_that_differs_and_which_way():
    """Synthetic windows like the unseen persons' but with the second channel's days 30% higher: its
    mean, minimum and maximum tell them apart (positive: higher), the first channel's features do not."""
    from synthwear.interfaces import EvaluationContext, Windows

    fidelity, rng = identity_benchmark(), np.random.default_rng(0)
    holdout = rng.normal(60, 5, (400, 21, 2)) + rng.normal(0, 5, (400, 1, 2))
    synthetic = rng.normal(60, 5, (400, 21, 2)) + rng.normal(0, 5, (400, 1, 2))
    synthetic[:, :, 1] *= 1.3
    ids = np.array([f"p{i}" for i in range(400)])
    windows = [Windows(values, ids) for values in (holdout, holdout, synthetic)]
    found = fidelity.telltales(EvaluationContext(None, ["hr", "sleep"], *windows, seed=0))
    assert len(found) == 12 and found["telltale.mean sleep"] > 0.45 and found["telltale.max sleep"] > 0.45
    assert abs(found["telltale.mean hr"]) < 0.08 and abs(found["telltale.lag-1 AC hr"]) < 0.08
    lines = fidelity.telltale_table({"row": {k: (v, 0.0) for k, v in found.items()}})
    assert lines[2].startswith("| row | ") and lines[2].count("sleep +0.") == 3


def test_only_folds_runs_the_named_fold_of_the_same_dealing_and_says_so(quick, tmp_path):
    """A long row split over runs: fold 2 alone is the full run's fold 2 (the same unseen persons and,
    trained with the same seed, the same score)."""
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import fidelity

        fidelity.main(
            [
                "--quick",
                "--repeats",
                "2",
                "--par-epochs",
                "--mostly-minutes",
                "--only-folds",
                "2",
                "--out",
                str(tmp_path),
            ]
        )
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    alone, full = json.loads((tmp_path / "results.json").read_text()), quick[0]
    assert [f["fold"] for f in alone["folds"]] == [2] and alone["meta"]["folds_run"] == [2]
    assert alone["folds"][0]["holdout_persons"] == full["folds"][1]["holdout_persons"]
    row = "synthwear fitbit"
    assert alone["folds"][0]["rows"][row]["discriminative"] == full["folds"][1]["rows"][row]["discriminative"]
    assert "2-fold cross-validation (only folds 2 run)" in (tmp_path / "table.md").read_text()


def test_a_trained_row_is_the_mean_of_its_repeats_column_by_column():
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from fidelity import mean_row
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    rows = [
        {"discriminative": 0.1, "tstr_mae": None, "ks": 0.5},
        {"discriminative": 0.3, "tstr_mae": None, "ks": np.nan},
    ]
    assert mean_row(rows) == {"discriminative": pytest.approx(0.2), "tstr_mae": None, "ks": 0.5}


def test_a_variant_changes_only_the_settings_it_names():
    import sys

    from synthwear.recipe import load_recipe

    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from fidelity import variant
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    recipe = load_recipe(REPO / "recipes" / "fitbit.yaml")
    label, changed = variant(recipe, "summary of the window: windows.summary_of=window loss.smoothing=1.5")
    assert label == "summary of the window" and changed.windows.summary_of == "window"
    assert changed.loss.options == {"smoothing": 1.5}
    unchanged = recipe.to_dict()
    for section in ("windows", "loss"):
        unchanged.pop(section)
        assert changed.to_dict()[section] != recipe.to_dict()[section]
    assert {k: v for k, v in changed.to_dict().items() if k not in ("windows", "loss")} == unchanged
    with pytest.raises(SystemExit, match="not key=value"):
        variant(recipe, "broken: windows.summary")


def test_tstr_forecasts_the_recipes_own_target_else_resting_hr_else_the_first_channel():
    import sys

    from synthwear.recipe import load_recipe

    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from fidelity import tstr_target, variant
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    assert tstr_target(load_recipe(REPO / "recipes" / "fitbit.yaml")) == "resting_hr"
    assert tstr_target(load_recipe(REPO / "recipes" / "fitbit-crowdsourced.yaml")) == "steps"
    _, untargeted = variant(
        load_recipe(REPO / "recipes" / "fitbit-crowdsourced.yaml"), "plain: evaluation.evaluators=[]"
    )
    assert tstr_target(untargeted) == "sleep_minutes"


def test_mostly_samples_are_placed_by_key_and_step_cut_and_padded_to_the_window(tmp_path):
    """Without the engine: a stand-in writes what its generate() does, each step across all sequences
    at once, keys as strings, one sequence too long, one short, one missing."""
    import sys

    import pandas as pd

    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from peers import sample_mostly
    finally:
        sys.path.remove(str(REPO / "benchmarks"))

    lengths = {"2": 4, "0": 3, "3": 1}  # window 1 comes back empty

    class Engine:
        workspace_path_ = str(tmp_path)

        def sample(self, ctx_data, device):
            assert list(ctx_data["window"]) == [0, 1, 2, 3] and device == "cpu"
            steps = [(key, step) for step in range(4) for key, n in lengths.items() if step < n]
            rows = pd.DataFrame({"window": [k for k, _ in steps], "x": [10.0 * int(k) + s for k, s in steps]})
            (tmp_path / "SyntheticData").mkdir()
            rows.to_parquet(tmp_path / "SyntheticData" / "part.000000.000000.parquet")

    values, seconds = sample_mostly(Engine(), 4, 3, ["x"])
    assert values.shape == (4, 3, 1) and seconds >= 0
    np.testing.assert_array_equal(values[..., 0], [[0, 1, 2], [np.nan] * 3, [20, 21, 22], [30, np.nan, np.nan]])


def test_candidates_picks_the_training_its_validation_persons_tell_apart_least(capsys):
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import candidates

        candidates.main(["--quick"])
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    rows = [line.split("|")[1:-1] for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + 2  # the header, then one row per fold
    for _, unseen, validation, picked, mean in rows[1:]:
        unseen, validation = ([float(x) for x in cell.split(",")] for cell in (unseen, validation))
        assert len(unseen) == len(validation) == 2
        assert float(picked) == pytest.approx(unseen[int(np.argmin(validation))], abs=1e-3)
        assert float(mean) == pytest.approx(np.mean(unseen), abs=1e-3)
