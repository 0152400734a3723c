"""The default recipe on the small, few-channel real cohorts researchers start from: every person
split ends with a complete run folder, and every evaluator gives a number or says why it cannot."""

import errno
import json
import os
from pathlib import Path

import pytest
import yaml
from cohorts import REPO, lifesnaps_cohort, small_cohort_recipe

from synthwear.errors import SynthwearError
from synthwear.evaluation import failures
from synthwear.pipeline import evaluate_run_folder, run_recipe
from synthwear.recipe import load_recipe
from synthwear.synthesizer import Synthesizer

TWO_CHANNELS = ["resting_hr", "sleep_minutes"]
RUN_FILES = {"synthetic.csv", "metrics.json", "model", "run.json", "report.html"}


SCORES = {"synthetic", "ceiling", "floor", "cosine", "dtw", "auc", "score"}


def unexplained_gaps(value, path: str = "", explained: bool = False, reasons: frozenset = frozenset()) -> list[str]:
    """Paths of scores that are null where nothing says why: a metric must be a number or a stated
    reason, given by an ``unavailable`` entry on it or around it, or by a verdict row of the same
    evaluator that states why that channel (``reasons``) has no score."""
    if isinstance(value, dict):
        explained = explained or bool(value.get("unavailable"))
        rows = value.get("verdict") if isinstance(value.get("verdict"), list) else []
        reasons = reasons | {row.get("channel") for row in rows if isinstance(row, dict) and row.get("unavailable")}
        return [
            gap
            for key, item in value.items()
            for gap in unexplained_gaps(item, f"{path}.{key}", explained or key in reasons, reasons)
        ]
    if isinstance(value, list):
        return [
            gap for i, item in enumerate(value) for gap in unexplained_gaps(item, f"{path}[{i}]", explained, reasons)
        ]
    return [path] if value is None and path.rsplit(".", 1)[-1] in SCORES and not explained else []


def run_small(tmp_path, frame, seed: int = 0):
    data = tmp_path / "cohort.csv"
    frame.to_csv(data, index=False)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(small_cohort_recipe(data, TWO_CHANNELS, seed=seed)))
    result = run_recipe(load_recipe(path), tmp_path / "run")
    assert {p.name for p in result.folder.iterdir()} == RUN_FILES
    metrics = json.loads((result.folder / "metrics.json").read_text())
    assert not failures(metrics), failures(metrics)
    assert set(metrics) == {choice["name"] for choice in result.run["recipe"]["evaluation"]["evaluators"]}
    assert not unexplained_gaps(metrics), unexplained_gaps(metrics)
    return metrics


@pytest.mark.parametrize("persons", [8, 12, 15])
def test_two_channel_cohorts_of_8_to_15_persons_run_to_the_end(tmp_path, persons):
    metrics = run_small(tmp_path, lifesnaps_cohort(persons, TWO_CHANNELS, seed=persons))
    membership = metrics["membership"]
    if "unavailable" not in membership:  # with 2+ holdout persons the attacks report numbers or reasons
        for attack in membership["attacks"].values():
            assert "unavailable" in attack or 0 <= attack["auc"] <= 1


@pytest.mark.parametrize("seed", range(10))
def test_every_person_split_of_a_small_cohort_runs_to_the_end(tmp_path, seed):
    run_small(tmp_path, lifesnaps_cohort(12, TWO_CHANNELS, seed=12), seed=seed)


def test_a_channel_constant_for_a_person(tmp_path):
    frame = lifesnaps_cohort(12, TWO_CHANNELS, seed=3)
    first = frame["person_id"].iloc[0]
    frame.loc[frame["person_id"] == first, "sleep_minutes"] = 420.0
    run_small(tmp_path, frame)


def test_a_cohort_the_disk_cannot_hold_is_refused_before_training(tmp_path, monkeypatch):
    raw = yaml.safe_load((REPO / "recipes" / "tiny.yaml").read_text())
    raw["sampling"]["persons"] = 10**12
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.setattr(Synthesizer, "fit", lambda *a, **k: pytest.fail("trained before the cohort was checked"))
    with pytest.raises(SynthwearError, match=r"synthetic.csv: 1,000,000,000,000 persons × 7 days make a file of about"):
        run_recipe(load_recipe(tmp_path / "r.yaml"), tmp_path / "run")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.yaml"]


def disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def full_at_checkpoint(patched: pytest.MonkeyPatch, n: int) -> None:
    """The disk fills as the n-th training checkpoint is written (the ones before it are saved)."""
    from synthwear import checkpoint

    save, calls = checkpoint.save_file, []

    def saving(*args, **kwargs):
        calls.append(1)
        return disk_full() if len(calls) == n else save(*args, **kwargs)

    patched.setattr(checkpoint, "save_file", saving)


@pytest.mark.parametrize(
    ("writer", "written"), [("synthwear.model.save_file", "/run"), ("pandas.DataFrame.to_csv", "/run/synthetic.csv")]
)
def test_a_disk_full_while_the_run_is_written_is_one_line_and_resume_finishes_it(
    tmp_path, monkeypatch, writer, written
):
    """The disk fills after training: one line naming what could not be written and why, nothing
    half-written, the checkpoint kept; once there is room, --resume writes the same run."""
    recipe, out = load_recipe(REPO / "recipes" / "tiny.yaml"), tmp_path / "run"
    with monkeypatch.context() as patched:
        patched.setattr(writer, disk_full)
        with pytest.raises(
            SynthwearError, match=rf"{written}: cannot be written \(No space left on device\)"
        ) as raised:
            run_recipe(recipe, out)
    assert "\n" not in str(raised.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".run.checkpoint.safetensors"]
    run_recipe(recipe, out, resume=True)
    assert (out / "model" / "weights.safetensors").is_file() and (out / "report.html").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_disk_full_during_training_keeps_the_last_checkpoint_and_resume_ends_as_if_never_stopped(
    tmp_path, monkeypatch
):
    """The second epoch's checkpoint cannot be written: one line naming it, the first epoch's
    checkpoint intact (written atomically), no temporary file; --resume then gives the model of a
    run never stopped."""
    from safetensors.torch import load_file

    recipe = load_recipe(REPO / "recipes" / "tiny.yaml")
    run_recipe(recipe, tmp_path / "reference")
    out = tmp_path / "run"
    with monkeypatch.context() as patched:
        full_at_checkpoint(patched, 2)
        with pytest.raises(SynthwearError, match=r"\.run\.checkpoint\.safetensors: cannot be written \(No space left"):
            run_recipe(recipe, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".run.checkpoint.safetensors", "reference"]
    run_recipe(recipe, out, resume=True)
    expected, got = (load_file(folder / "model" / "weights.safetensors") for folder in (tmp_path / "reference", out))
    assert all((expected[k] == got[k]).all() for k in expected)


def test_resume_finishes_an_evaluation_that_was_cut_off_and_only_for_its_own_recipe(tmp_path):
    """Killed after the folder was published and before the training checkpoint was removed: the
    stale checkpoint goes and the evaluation is finished; another recipe is told how to finish it."""
    recipe, out = load_recipe(REPO / "recipes" / "tiny.yaml"), tmp_path / "run"
    run_recipe(recipe, out)
    expected = json.loads((out / "metrics.json").read_text())
    (out / "metrics.json").unlink()
    (out / "report.html").unlink()
    stale = tmp_path / ".run.checkpoint.safetensors"
    stale.write_bytes(b"left from the training that made the folder")
    os.utime(stale, ns=(0, 0))
    with pytest.raises(SynthwearError, match=r"holds a run whose evaluation was cut off; pass --resume"):
        run_recipe(recipe, out)
    other = recipe.model_copy(update={"seed": 1})
    with pytest.raises(SynthwearError, match=r"was run with another recipe .* `synthwear evaluate .*run` finishes"):
        run_recipe(other, out, resume=True)
    run_recipe(recipe, out, resume=True)
    assert json.loads((out / "metrics.json").read_text()) == expected and (out / "report.html").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    with pytest.raises(SynthwearError, match=r"the run is complete, nothing to resume"):
        run_recipe(recipe, out, resume=True)


@pytest.mark.parametrize("drop", ["recipe", "data"])
def test_evaluate_names_what_run_json_lacks(tmp_path, drop):
    run = {"recipe": yaml.safe_load((REPO / "recipes" / "tiny.yaml").read_text()), "data": {"fingerprint": "x"}}
    del run[drop]
    (tmp_path / "run.json").write_text(json.dumps(run))
    with pytest.raises(SynthwearError, match=rf"run.json: not what a synthwear run writes \(missing '{drop}'\)"):
        evaluate_run_folder(tmp_path)


def tiny_recipe(tmp_path, **changes):
    """recipes/tiny.yaml with ``changes`` to its top-level sections, saved beside the run."""
    raw = {**yaml.safe_load((REPO / "recipes" / "tiny.yaml").read_text()), **changes}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_recipe(path)


@pytest.mark.parametrize("key", ["path", "persons"])
def test_a_run_never_replaces_a_folder_that_holds_its_own_input(tmp_path, key):
    """``--overwrite`` replaces an earlier run folder as a whole: the data (or persons table) read
    from inside it would be deleted by the run that reads it."""
    run_recipe(tiny_recipe(tmp_path), tmp_path / "run")
    data = tmp_path / "run" / "synthetic.csv"
    before = data.read_bytes()
    sections = {"path": {"path": "run/synthetic.csv"}, "persons": {"dataset": "lifesnaps", "persons": "run/x.csv"}}
    (tmp_path / "run" / "x.csv").write_text("person_id,age\n")  # a user's file in a run folder is refused anyway
    recipe = tiny_recipe(tmp_path, data=sections[key])
    with pytest.raises(SynthwearError, match=rf"^{tmp_path / 'recipe.yaml'}: 'run/.*' is inside .*run, which the run"):
        run_recipe(recipe, tmp_path / "run", overwrite=True)
    assert data.read_bytes() == before


def test_an_interrupted_runs_checkpoint_is_kept_unless_resumed_or_overwritten(tmp_path):
    kept = tmp_path / ".run.checkpoint.safetensors"
    kept.write_bytes(b"training of an interrupted run")
    with pytest.raises(SynthwearError, match=r"run: an interrupted run's training is kept in .*pass --resume"):
        run_recipe(tiny_recipe(tmp_path), tmp_path / "run")
    assert kept.read_bytes() == b"training of an interrupted run"
    run_recipe(tiny_recipe(tmp_path), tmp_path / "run", overwrite=True)
    assert (tmp_path / "run" / "metrics.json").is_file() and not kept.exists()


def test_dot_as_the_run_folder_names_the_folder_it_stands_for(tmp_path, monkeypatch):
    """The checkpoint and staging folders are named after the run folder; '.' has no name."""
    run_recipe(tiny_recipe(tmp_path), tmp_path / "run")
    monkeypatch.chdir(tmp_path / "run")
    result = run_recipe(tiny_recipe(tmp_path), Path("."), overwrite=True)
    assert result.folder == (tmp_path / "run").resolve() and not (tmp_path / ".run.checkpoint.safetensors").exists()
