"""One run: load -> split -> train -> sample -> write -> evaluate -> report, into one run folder.

The model, the synthetic cohort and run.json are assembled under a staging name and swapped into
place as soon as sampling ends, so no evaluator can lose them; each evaluator then runs isolated
(synthwear.evaluation) and metrics.json and the report are written atomically beside them.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from rich.progress import Progress

from synthwear.checkpoint import Checkpointing, checkpoint_path, run_digest
from synthwear.cohort import Cohort
from synthwear.datasets import get_dataset
from synthwear.errors import SynthwearError, one_line
from synthwear.evaluation import build_evaluators, failure_summary, run_evaluators
from synthwear.interfaces import EvaluationContext, Evaluator, GeneratorSpec, Loss, Windows
from synthwear.model import SynthesisModel
from synthwear.plugins import Registry, default_registry
from synthwear.privacy import train_private
from synthwear.recipe import Recipe, parse_recipe
from synthwear.report import write_report
from synthwear.report.page import read_json
from synthwear.run_folder import check_output_folder, publish, run_folder_lock, staging_folder
from synthwear.sampling import to_long_frame
from synthwear.split import PersonSplit, find_duplicate_persons, split_persons
from synthwear.tables import atomic_path, fingerprint, read_daily_table, validate_daily_table, write_daily_table
from synthwear.train import Shard, TrainingResult, resolve_device, train_model, window_tokens


@dataclass
class LoadedData:
    frame: pd.DataFrame
    source: str
    licence: str | None = None
    citation: str | None = None
    notes: list[str] = field(default_factory=list)


def load_data(recipe: Recipe, registry: Registry) -> LoadedData:
    """Read the recipe's data source (shipped dataset, table file, or device export) and validate it."""
    channels = list(recipe.channels)
    nonnegative = tuple(name for name, spec in recipe.channels.items() if spec.range[0] >= 0)
    data = recipe.data
    if data.dataset:
        dataset = get_dataset(data.dataset)
        frame = read_daily_table(dataset.path, channels, columns=data.columns, nonnegative=nonnegative)
        return LoadedData(frame, f"synthwear dataset {dataset.name}", dataset.licence, dataset.citation)
    path = recipe.resolve_path(data.path)
    if data.importer:
        if not path.exists():
            raise SynthwearError(f"{recipe.where()}: data.path {str(path)!r} does not exist")
        imported = registry.get("importers", data.importer)(path)
        frame = validate_daily_table(
            imported.frame, channels, source=path, columns=data.columns, nonnegative=nonnegative
        )
        return LoadedData(frame, f"{data.importer} export {path}", notes=imported.notes)
    frame = read_daily_table(
        path, channels, columns=data.columns, fmt=data.format, nonnegative=nonnegative, date_format=data.date_format
    )
    return LoadedData(frame, str(path))


def build_model(recipe: Recipe, registry: Registry, device: torch.device) -> SynthesisModel:
    """Encoders and generator as the recipe names them, built through the plugin registry."""
    where = recipe.where()
    encoders = []
    for name, spec in recipe.channels.items():
        choice = spec.encoder or recipe.encoder
        encoders.append(
            registry.build("encoders", choice.name, choice.options, *spec.range, where=f"{where}: channels.{name}")
        )
    summary = recipe.windows.summary
    gen_spec = GeneratorSpec(tuple(e.n_tokens for e in encoders), recipe.windows.days + summary)
    generator = registry.build(
        "generators", recipe.generator.name, recipe.generator.options, gen_spec, where=f"{where}: generator"
    ).to(device)
    return SynthesisModel(
        list(recipe.channels),
        [s.decimals for s in recipe.channels.values()],
        [tuple(s.range) for s in recipe.channels.values()],
        encoders,
        generator,
        recipe.generator.name,
        gen_spec,
        recipe.to_dict(),
        summary,
    )


def build_loss(recipe: Recipe, registry: Registry) -> Loss:
    """The recipe's loss, told the channels' names when it asks (the optional ``bind(channels)``)."""
    where = f"{recipe.where()}: loss"
    loss = registry.build("losses", recipe.loss.name, recipe.loss.options, where=where)
    bind = getattr(loss, "bind", None)
    if bind is not None:
        try:
            bind(list(recipe.channels))
        except ValueError as err:  # a third-party loss refusing the channels
            raise SynthwearError(f"{where}: {err}") from None
    return loss


def usable_persons(recipe: Recipe, loaded: LoadedData) -> tuple[Cohort, list[str], list[list[str]]]:
    """The cohort, the persons with at least one usable window, and groups of ids that share
    identical days (one person enrolled twice), which every split keeps on one side."""
    channels, windows = list(recipe.channels), recipe.windows
    cohort = Cohort.from_frame(loaded.frame, channels)
    with_window = np.unique(cohort.person_of(cohort.window_starts(windows.days, windows.stride, windows.min_observed)))
    return cohort, list(cohort.person_ids[with_window]), find_duplicate_persons(loaded.frame, channels)


def split_cohort(
    recipe: Recipe, loaded: LoadedData, log: Callable[[str], None], holdout_persons: list[str] | None = None
) -> tuple[PersonSplit, dict[str, Cohort]]:
    """The usable persons split into train / validation / holdout (the split, and a cohort per part);
    ``holdout_persons`` fixes the holdout (a fold of person cross-validation)."""
    cohort, persons, duplicates = usable_persons(recipe, loaded)
    for group in duplicates:
        log(f"[yellow]note:[/] persons {', '.join(group)} share identical days; kept on the same side of the split")
    split = split_persons(
        persons,
        validation=recipe.split.validation,
        holdout=recipe.split.holdout,
        seed=recipe.seed,
        duplicate_groups=duplicates,
        source=loaded.source,
        holdout_persons=holdout_persons,
    )
    return split, {
        name: cohort.select(np.flatnonzero(np.isin(cohort.person_ids, getattr(split, name))))
        for name in ("train", "validation", "holdout")
    }


def evaluation_windows(recipe: Recipe, part: Cohort) -> Windows:
    """The real windows evaluators see: non-overlapping, at most ``evaluation.max_windows`` (a seeded subsample)."""
    days = recipe.windows.days
    starts = part.window_starts(days, days, recipe.windows.min_observed)
    return part.windows(subsample(starts, recipe.evaluation.max_windows, recipe.seed), days)


def subsample(starts: np.ndarray, limit: int, seed: int) -> np.ndarray:
    if len(starts) <= limit:
        return starts
    return np.sort(np.random.default_rng(seed).choice(starts, limit, replace=False))


def package_versions(registry: Registry) -> dict[str, str]:
    names = {"synthwear", "torch", "numpy", "pandas", "pluggy", "safetensors"}
    names |= {e.package for e in registry.entries() if e.version}
    versions = {"python": platform.python_version()}
    for name in sorted(names):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    return versions


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

    Everything that can be checked without training is checked first: the evaluators' options and
    the output place (never a user's folder; an earlier run only with ``overwrite``). Training keeps
    a checkpoint beside the folder; ``resume`` continues a killed run from it."""
    registry = registry or default_registry()
    out_dir = Path(out_dir)
    evaluators = build_evaluators(recipe, registry)
    shard = Shard.of_process_group()
    if resume and (recipe.privacy or shard.world_size > 1):
        raise SynthwearError(
            f"{recipe.where()}: --resume is not available for private (privacy:) or torchrun runs yet: their "
            "accountant and per-rank sampler states are not checkpointed"
        )
    if shard.rank != 0:
        train_and_sample(recipe, registry, None)  # trains its shard, then returns before sampling and writing
        return None
    check_output_folder(out_dir, overwrite=overwrite)
    if resume and not checkpoint_path(out_dir).exists():
        raise SynthwearError(f"{out_dir}: no checkpoint to resume ({checkpoint_path(out_dir).name} is absent)")
    with run_folder_lock(out_dir):
        trained = train_and_sample(recipe, registry, progress, checkpoint=(checkpoint_path(out_dir), resume))
        folder = write_run_folder(out_dir, trained.model, trained.synthetic, trained.run_info, recipe)
        checkpoint_path(out_dir).unlink(missing_ok=True)  # the run is in place: nothing left to resume
        metrics = evaluate_into(
            folder,
            trained.run_info,
            evaluators,
            evaluation_context(
                recipe, trained.parts, trained.model, trained.synthetic, trained.run_info.get("privacy")
            ),
            progress,
        )
    return RunResult(folder, metrics, trained.run_info)


@dataclass
class Trained:
    """What training and sampling produced, before anything is evaluated."""

    model: SynthesisModel
    synthetic: np.ndarray  # (persons, days, C)
    parts: dict[str, Cohort]
    run_info: dict[str, Any]


def train_and_sample(
    recipe: Recipe,
    registry: Registry,
    progress: Progress | None,
    holdout_persons: list[str] | None = None,
    checkpoint: tuple[Path, bool] | None = None,
) -> Trained | None:
    """Load, split, train and sample (None on a torchrun rank other than 0, after training).
    ``holdout_persons`` fixes who is never trained on (benchmarks/fidelity.py's folds);
    ``checkpoint`` (file, resume) keeps the training state after every epoch (non-private runs in
    one process) and, with resume, starts from it."""
    log = progress.console.print if progress else (lambda *a, **k: None)
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    torch.manual_seed(recipe.seed)
    channels, days = list(recipe.channels), recipe.windows.days
    device = resolve_device(recipe.training.device)  # a device this machine lacks is refused before any work
    loss = build_loss(recipe, registry)

    loaded = load_data(recipe, registry)
    data_fingerprint = fingerprint(loaded.frame)
    for note in loaded.notes:
        log(f"[yellow]note:[/] {note}")
    split, parts = split_cohort(recipe, loaded, log, holdout_persons)
    timings["load"] = time.perf_counter() - clock

    model = build_model(recipe, registry, device)
    tokens, clipped = {}, {}
    for name, part in parts.items():
        tokens[name], clipped[name] = model.tokenize(part.values)
    train_starts = parts["train"].window_starts(days, recipe.windows.stride, recipe.windows.min_observed)
    val_starts = subsample(
        parts["validation"].window_starts(days, recipe.windows.stride, recipe.windows.min_observed),
        recipe.evaluation.max_windows,
        recipe.seed,
    )
    if len(train_starts) == 0 or len(val_starts) == 0:
        raise SynthwearError(
            f"{loaded.source}: no {days}-day window with enough observed days for training or validation"
        )
    clipped_total = {c: int(sum(clipped[p][i] for p in parts)) for i, c in enumerate(channels)}
    if any(clipped_total.values()):
        log(f"[yellow]note:[/] values outside the recipe's ranges were clipped: {clipped_total}")

    clock = time.perf_counter()
    task = progress.add_task("training", total=recipe.training.epochs) if progress else None

    def on_epoch(record: dict) -> None:
        if progress:
            progress.update(task, advance=1, description=f"training (val loss {record['validation_loss']:.3f})")

    train_windows, val_windows = (
        window_tokens(tokens["train"], train_starts, days),
        window_tokens(tokens["validation"], val_starts, days),
    )
    privacy = None
    if recipe.privacy:
        result, accounting = train_private(
            model,
            loss,
            train_windows,
            parts["train"].person_of(train_starts),
            val_windows,
            recipe.training,
            recipe.privacy,
            seed=recipe.seed,
            on_epoch=on_epoch,
            hide_summary=recipe.windows.summary_hidden,
        )
        privacy = accounting.to_dict()
    else:
        checkpointing = None
        if checkpoint and Shard.of_process_group().world_size == 1:
            digest = run_digest(recipe.to_dict(), data_fingerprint)
            checkpointing = Checkpointing(checkpoint[0], digest, resume=checkpoint[1])
        result: TrainingResult = train_model(
            model,
            loss,
            train_windows,
            val_windows,
            recipe.training,
            seed=recipe.seed,
            on_epoch=on_epoch,
            checkpointing=checkpointing,
            hide_summary=recipe.windows.summary_hidden,
        )
    if progress:
        progress.update(task, total=result.epochs, completed=result.epochs)
    timings["train"] = time.perf_counter() - clock
    if Shard.of_process_group().rank != 0:
        return None  # under torchrun every rank now holds the same weights: rank 0 alone samples and writes

    clock = time.perf_counter()
    sample_days = recipe.sampling.days or days
    task = progress.add_task("sampling", total=recipe.sampling.persons) if progress else None
    synthetic = model.generate(
        recipe.sampling.persons,
        sample_days,
        temperature=recipe.sampling.temperatures(channels),
        seed=recipe.seed,
        on_batch=(lambda n: progress.update(task, advance=n)) if progress else None,
    )
    timings["sample"] = time.perf_counter() - clock

    def window_counts(part: Cohort, part_starts: np.ndarray) -> dict[str, int]:
        complete = int((part.observed_share(part_starts, days) == 1.0).sum())
        return {
            "windows": len(part_starts),
            "complete": complete,
            "with_gaps": len(part_starts) - complete,
            "persons": part.n_persons,
        }

    run_info = {
        "recipe": recipe.to_dict(),
        "recipe_file": str(recipe.source.resolve()) if recipe.source else None,
        "seed": recipe.seed,
        "versions": package_versions(registry),
        "device": str(device),
        "data": {
            "source": loaded.source,
            "licence": loaded.licence,
            "citation": loaded.citation,
            "fingerprint": data_fingerprint,
            "persons": int(loaded.frame["person_id"].nunique()),
            "person_days": len(loaded.frame),
            "notes": loaded.notes,
            "clipped_values": clipped_total,
        },
        "split": split.to_dict(),
        "windows": {
            "train": window_counts(parts["train"], train_starts),
            "validation": window_counts(parts["validation"], val_starts),
            "evaluation_holdout": len(evaluation_windows(recipe, parts["holdout"]).values),
        },
        "training": result.to_dict(),
        "sampling": {
            "persons": recipe.sampling.persons,
            "days": sample_days,
            "temperature": recipe.sampling.temperature,
        },
        "timings_seconds": timings,
    }
    if privacy:
        run_info["privacy"] = privacy
    return Trained(model, synthetic, parts, run_info)


def evaluation_context(
    recipe: Recipe,
    parts: dict[str, Cohort],
    model: SynthesisModel,
    synthetic: np.ndarray,
    privacy: dict[str, Any] | None,
) -> EvaluationContext:
    """What every evaluator sees: real training and holdout windows, and the synthetic cohort cut into windows."""
    days, channels = recipe.windows.days, list(recipe.channels)
    evaluation = {name: evaluation_windows(recipe, parts[name]) for name in ("train", "holdout")}
    n_cut = synthetic.shape[1] // days
    synthetic_windows = Windows(
        synthetic[:, : n_cut * days].reshape(-1, days, len(channels)),
        np.repeat([f"synthetic-{i + 1}" for i in range(len(synthetic))], n_cut),
    )
    context = EvaluationContext(
        model, channels, evaluation["train"], evaluation["holdout"], synthetic_windows, recipe.seed
    )
    if privacy:
        context.extras["privacy"] = privacy
    return context


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
    task = progress.add_task("evaluating", total=len(evaluators)) if progress else None
    fresh = run_evaluators(
        evaluators, context, on_done=(lambda name: progress.update(task, advance=1)) if progress else None
    )
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
    out_dir: Path, model: SynthesisModel, synthetic: np.ndarray, run_info: dict, recipe: Recipe
) -> Path:
    """Model, synthetic cohort and run.json, assembled under a staging name and swapped into place:
    what training and sampling made is kept before any evaluator runs."""
    with staging_folder(out_dir) as staging:
        write_daily_table(
            to_long_frame(synthetic, model.channels, recipe.sampling.start_date), staging / "synthetic.csv"
        )
        model.save(staging / "model")
        write_json(staging / "run.json", run_info)
        publish(staging, out_dir)
    return out_dir


def read_synthetic(path: Path, channels: list[str]) -> np.ndarray:
    """A run's synthetic.csv back to (persons, days, C), the array it was written from."""
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as err:
        raise SynthwearError(f"{path}: cannot be read ({one_line(err)})") from None
    missing = [c for c in ("person_id", "date", *channels) if c not in frame.columns]
    lengths = frame.groupby("person_id", sort=False).size() if not missing else None
    if missing or lengths.nunique() != 1:
        raise SynthwearError(
            f"{path}: not a synthetic cohort of this run (columns {', '.join(missing) or 'ok'}; "
            "every person must have the same number of days)"
        )
    frame = frame.sort_values(["person_id", "date"], kind="stable")
    return frame[channels].to_numpy(float).reshape(len(lengths), int(lengths.iloc[0]), len(channels))


def evaluate_run_folder(
    folder: Path, *, only: list[str] | None = None, registry: Registry | None = None, progress: Progress | None = None
) -> RunResult:
    """Rerun a finished run's evaluators (all, or ``only`` these) on its saved model and synthetic data,
    against the same real persons: the data is read again and must match the run's fingerprint."""
    folder, registry = Path(folder), registry or default_registry()
    run_info = read_json(folder / "run.json")
    source = run_info.get("recipe_file")
    recipe = parse_recipe(run_info.get("recipe"), source=Path(source) if source else None)
    evaluators = build_evaluators(recipe, registry, only)
    with run_folder_lock(folder):
        loaded = load_data(recipe, registry)
        if fingerprint(loaded.frame) != run_info["data"]["fingerprint"]:
            raise SynthwearError(
                f"{loaded.source}: the data differs from what {folder} was trained on (fingerprint "
                "changed), so its evaluation would compare against other persons"
            )
        _, parts = split_cohort(recipe, loaded, lambda *a, **k: None)
        model = SynthesisModel.load(folder / "model", registry, device=resolve_device("auto"))
        synthetic = read_synthetic(folder / "synthetic.csv", model.channels)
        earlier = read_json(folder / "metrics.json") if only and (folder / "metrics.json").exists() else None
        context = evaluation_context(recipe, parts, model, synthetic, run_info.get("privacy"))
        metrics = evaluate_into(folder, run_info, evaluators, context, progress, earlier)
    return RunResult(folder, metrics, run_info)
