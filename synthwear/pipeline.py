"""One run folder: a ``Synthesizer`` fitted and sampled as a recipe says, then evaluated and reported.

The model, the synthetic cohort and run.json are assembled under a staging name and swapped into
place as soon as sampling ends, so no evaluator can lose them; each evaluator then runs isolated
(synthwear.evaluation) and metrics.json and the report are written atomically beside them.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.progress import Progress

from synthwear.checkpoint import checkpoint_path, remove_checkpoints
from synthwear.errors import SynthwearError
from synthwear.evaluation import build_evaluators, failure_summary, run_evaluators
from synthwear.interfaces import EvaluationContext, Evaluator
from synthwear.plugins import Registry, default_registry
from synthwear.progress import Feedback
from synthwear.recipe import Recipe, parse_recipe
from synthwear.report import write_report
from synthwear.report.page import read_json, read_run_table, record_problem
from synthwear.run_folder import (
    COHORT_FILES,
    check_cohort_file,
    check_output_folder,
    is_run_folder,
    publish,
    record_cohort_files,
    run_folder_lock,
    staging_folder,
    unfinished_evaluation,
)
from synthwear.sampling import check_request, parse_recipe_conditions, to_long_frame
from synthwear.shard import Shard
from synthwear.steps import (
    attach_attributes,
    changed_source,
    data_fingerprint,
    evaluation_context,
    load_data,
    split_cohort,
)
from synthwear.synthesizer import Synthesizer, synthetic_values
from synthwear.tables import atomic_path, read_person_table, write_daily_table


@dataclass
class RunResult:
    folder: Path
    metrics: dict[str, Any]
    run: dict[str, Any]

    @property
    def failures(self) -> str | None:
        """One line naming the evaluators that could not be computed, or None."""
        return failure_summary(self.metrics, self.folder)


def run_recipe(
    recipe: Recipe,
    out_dir: Path,
    *,
    registry: Registry | None = None,
    progress: Progress | None = None,
    overwrite: bool = False,
    resume: bool = False,
) -> RunResult | None:
    """Do the whole job for a recipe and write the run folder (None on a torchrun rank other than 0).

    Everything that can be checked without training is checked first: the evaluators' options, the
    synthetic cohort against memory and disk, and the output place (never a user's folder; an earlier
    run only with ``overwrite``). Training keeps
    a checkpoint beside the folder; ``resume`` continues a killed run from it, or, killed after the
    folder was written, finishes its evaluation."""
    registry = registry or default_registry()
    out_dir = run_folder_path(out_dir)
    refuse_inputs_inside(recipe, out_dir)
    evaluators = build_evaluators(recipe, registry)
    parse_recipe_conditions(recipe.sampling.where, recipe.sampling.quotas, recipe.where())
    shard = Shard.of_process_group()
    if resume and evaluation_to_finish(recipe, out_dir, overwrite):  # killed after its folder was written
        return evaluate_run_folder(out_dir, registry=registry, progress=progress) if shard.rank == 0 else None
    # on every torchrun rank, so that none is left waiting for the others
    check_cohort(recipe, out_dir)
    check_output_folder(out_dir, overwrite=overwrite, resume=resume)
    check_checkpoint(out_dir, overwrite=overwrite, resume=resume)
    synth = Synthesizer(recipe, registry=registry)  # a device this machine lacks is refused here
    keep = checkpoint_path(out_dir)  # one file, written by rank 0 with every rank's random generators
    if shard.rank != 0:
        synth.fit(progress=None, checkpoint=keep, resume=resume)  # its shard; rank 0 alone samples and writes
        return None
    with run_folder_lock(out_dir):
        synth.fit(progress=progress, checkpoint=keep, resume=resume)
        starts, persons = synth.first_days(), synth.synthetic_persons()
        codes = synth.attribute_codes(persons)
        synthetic = synth.sample_array(start=starts, attributes=codes, progress=progress)
        folder = write_run_folder(out_dir, synth, synthetic, starts, persons)
        remove_checkpoints(out_dir)  # the run is in place: nothing left to resume
        context = evaluation_context(
            recipe, synth.parts, synth.model, synthetic, starts, synth.record.get("privacy"), codes
        )
        metrics = evaluate_into(folder, synth.record, evaluators, context, progress)
    return RunResult(folder, metrics, synth.record)


def check_checkpoint(out_dir: Path, *, overwrite: bool, resume: bool) -> None:
    """``--resume`` needs the checkpoint a killed training kept; a run without it would overwrite
    that checkpoint, so it is refused unless ``--overwrite`` says to start again."""
    checkpoint = checkpoint_path(out_dir)
    if resume and not checkpoint.exists():
        raise SynthwearError(f"{out_dir}: no checkpoint to resume ({checkpoint.name} is absent)")
    if not resume and not overwrite and checkpoint.exists():
        raise SynthwearError(
            f"{out_dir}: an interrupted run's training is kept in {checkpoint.name}; pass --resume "
            "to continue it, or --overwrite to start again"
        )


def run_folder_path(out_dir: Path) -> Path:
    """``--out`` as the run folder's own path: ``.`` or ``..`` by the name of the folder they stand for
    (the checkpoint and staging folders beside it are named after it)."""
    out_dir = Path(out_dir)
    return out_dir.resolve() if out_dir.name in ("", ".", "..") else out_dir


def refuse_inputs_inside(recipe: Recipe, out_dir: Path) -> None:
    """A file the run reads (its data, persons table or base model) inside the folder the run writes
    would be deleted when the run replaces that folder (``--overwrite``), or read as it is rewritten."""
    data = recipe.data
    inputs = [data.path if data else None, data.persons if data and isinstance(data.persons, str) else None]
    inputs.append(recipe.base.model if recipe.base else None)
    folder = out_dir.resolve()
    for given in filter(None, inputs):
        path = recipe.resolve_path(given)  # a shipped base's name is no folder here
        if path.exists() and (path == folder or folder in path.parents):
            raise SynthwearError(
                f"{recipe.where()}: {given!r} is inside {out_dir}, which the run writes (and --overwrite replaces); "
                "write the run to another folder"
            )


def evaluation_to_finish(recipe: Recipe, out_dir: Path, overwrite: bool) -> bool:
    """For ``--resume``: True where this recipe's run folder is in place and its evaluation was cut
    off (a checkpoint older than the folder is left from the training that made it, and goes); a
    complete run, or one another recipe made, is a one-line refusal. False where training is what is
    to be resumed (no run folder, or a checkpoint newer than the one there)."""
    checkpoint = checkpoint_path(out_dir)
    if overwrite or not is_run_folder(out_dir):
        return False
    if checkpoint.exists() and checkpoint.stat().st_mtime_ns > (out_dir / "run.json").stat().st_mtime_ns:
        return False
    if not unfinished_evaluation(out_dir):
        raise SynthwearError(f"{out_dir}: the run is complete, nothing to resume (to run it again: --overwrite alone)")
    if read_json(out_dir / "run.json").get("recipe") != json.loads(json.dumps(recipe.to_dict())):
        raise SynthwearError(
            f"{out_dir}: was run with another recipe than {recipe.where()} (or another --seed); "
            f"`synthwear evaluate {out_dir}` finishes its evaluation as it was run"
        )
    remove_checkpoints(out_dir)
    return True


def check_cohort(recipe: Recipe, out_dir: Path) -> None:
    """The synthetic cohort the run will sample, checked as ``synthwear sample`` checks a request: one
    that memory or the disk cannot hold is refused now, not after the training it would waste."""
    sampling, channels = recipe.sampling, list(recipe.channels)
    days = sampling.days or recipe.windows.days
    check_request(sampling.persons, days, len(channels), sampling.temperatures(channels), out_dir / "synthetic.csv")


def evaluate_into(
    folder: Path,
    run_info: dict[str, Any],
    evaluators: dict[str, Evaluator],
    context: EvaluationContext,
    progress: Progress | None,
    earlier: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the evaluators (each isolated), then write metrics.json, the report and the timings into run.json."""
    clock = time.perf_counter()
    advance = Feedback(progress).task("evaluating", len(evaluators))
    fresh = run_evaluators(evaluators, context, on_done=lambda name: advance())
    metrics = {**(earlier or {}), **fresh}
    timings = run_info["timings_seconds"]
    timings["evaluate"] = time.perf_counter() - clock
    write_json(folder / "metrics.json", metrics)
    write_json(folder / "run.json", run_info)  # the report shows the evaluation's timing
    clock = time.perf_counter()
    write_report(folder)
    timings["report"] = time.perf_counter() - clock
    write_json(folder / "run.json", run_info)
    return metrics


def write_json(path: Path, value: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(value, indent=2, default=str))


def write_run_folder(
    out_dir: Path, synth: Synthesizer, synthetic: np.ndarray, starts: np.ndarray, persons: pd.DataFrame | None
) -> Path:
    """Model, synthetic cohort (persons starting on ``starts``; their attributes in persons.csv when the
    model has any) and run.json, assembled under a staging name and swapped into place: what training
    and sampling made is kept before any evaluator runs."""
    with staging_folder(out_dir) as staging:
        frame = to_long_frame(synthetic, synth.fitted.channels, starts)
        write_daily_table(frame, staging / "synthetic.csv")
        if persons is not None:
            write_daily_table(persons, staging / "persons.csv")
        synth.save(staging / "model")
        record_cohort_files(staging, synth.record)
        write_json(staging / "run.json", synth.record)
        publish(staging, out_dir)
    return out_dir


def read_synthetic(path: Path, channels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """A run's synthetic.csv back to (persons, days, C), the array it was written from, and each
    person's first day."""
    return synthetic_values(read_run_table(path), channels, str(path))


def evaluate_run_folder(
    folder: Path, *, only: list[str] | None = None, registry: Registry | None = None, progress: Progress | None = None
) -> RunResult:
    """Rerun a finished run's evaluators (all, or ``only`` these) on its saved model and synthetic data,
    against the same real persons: the data is read again and must match the run's fingerprint."""
    folder, registry = Path(folder), registry or default_registry()
    run_info = read_json(folder / "run.json")
    try:
        raw, trained_on = run_info["recipe"], run_info["data"]["fingerprint"]
    except (KeyError, TypeError) as err:
        raise SynthwearError(f"{folder / 'run.json'}: {record_problem(err)}") from None
    source = run_info.get("recipe_file")
    recipe = parse_recipe(raw, source=Path(source) if source else None)
    evaluators = build_evaluators(recipe, registry, only)
    with run_folder_lock(folder):
        loaded = load_data(recipe, registry)
        if data_fingerprint(loaded) != trained_on:
            raise SynthwearError(
                f"{changed_source(loaded, trained_on)}: the data differs from what {folder} was trained on (fingerprint "
                "changed), so its evaluation would compare against other persons"
            )
        _, parts = split_cohort(recipe, loaded, lambda *a, **k: None)
        model = Synthesizer.load(folder / "model", registry=registry).fitted
        for name in COHORT_FILES:
            check_cohort_file(folder, name, run_info)
        synthetic, starts = read_synthetic(folder / "synthetic.csv", model.channels)
        codes = None
        if model.attributes is not None:
            attach_attributes(model.attributes, loaded, parts)
            persons = folder / "persons.csv"
            codes = model.attributes.encode(read_person_table(persons), source=str(persons))
        earlier = read_json(folder / "metrics.json") if only and (folder / "metrics.json").exists() else None
        context = evaluation_context(recipe, parts, model, synthetic, starts, run_info.get("privacy"), codes)
        metrics = evaluate_into(folder, run_info, evaluators, context, progress, earlier)
    return RunResult(folder, metrics, run_info)
