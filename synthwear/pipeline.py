"""One run: load -> split -> train -> sample -> evaluate -> report, into one run folder.

The folder is assembled under a temporary name and renamed into place at the end, so a failed or
interrupted run never leaves a half-written result where a finished one is expected.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from rich.progress import Progress

from synthwear.cohort import Cohort
from synthwear.datasets import get_dataset
from synthwear.errors import SynthwearError
from synthwear.interfaces import EvaluationContext, GeneratorSpec, Windows
from synthwear.model import SynthesisModel
from synthwear.plugins import Registry, default_registry
from synthwear.privacy import train_private
from synthwear.recipe import Recipe
from synthwear.report import write_report
from synthwear.split import PersonSplit, find_duplicate_persons, split_persons
from synthwear.tables import fingerprint, read_daily_table, validate_daily_table, write_daily_table
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
    frame = read_daily_table(path, channels, columns=data.columns, fmt=data.format, nonnegative=nonnegative)
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
    gen_spec = GeneratorSpec(tuple(e.n_tokens for e in encoders), recipe.windows.days)
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
    )


def to_long_frame(values: np.ndarray, channels: list[str], start_date: str, prefix: str = "synthetic") -> pd.DataFrame:
    """(N, days, C) sequences -> long table person_id, date, channels (the input's schema)."""
    n, days, _ = values.shape
    width = len(str(n))
    persons = np.repeat([f"{prefix}-{i + 1:0{width}d}" for i in range(n)], days)
    dates = np.tile(pd.date_range(start_date, periods=days, freq="D"), n)
    frame = pd.DataFrame(values.reshape(n * days, -1), columns=channels)
    frame.insert(0, "date", dates)
    frame.insert(0, "person_id", persons)
    return frame


def split_cohort(
    recipe: Recipe, loaded: LoadedData, log: Callable[[str], None]
) -> tuple[PersonSplit, dict[str, Cohort]]:
    """The persons with at least one usable window, split into train / validation / holdout (the
    split, and a cohort per part); persons sharing identical days are kept on one side."""
    channels, windows = list(recipe.channels), recipe.windows
    cohort = Cohort.from_frame(loaded.frame, channels)
    with_window = np.unique(cohort.person_of(cohort.window_starts(windows.days, windows.stride, windows.min_observed)))
    duplicates = find_duplicate_persons(loaded.frame, channels)
    for group in duplicates:
        log(f"[yellow]note:[/] persons {', '.join(group)} share identical days; kept on the same side of the split")
    split = split_persons(
        list(cohort.person_ids[with_window]),
        validation=recipe.split.validation,
        holdout=recipe.split.holdout,
        seed=recipe.seed,
        duplicate_groups=duplicates,
        source=loaded.source,
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


def run_recipe(
    recipe: Recipe, out_dir: Path, *, registry: Registry | None = None, progress: Progress | None = None
) -> RunResult | None:
    """Do the whole job for a recipe and write the run folder (None on a torchrun rank other than 0)."""
    registry = registry or default_registry()
    log = progress.console.print if progress else (lambda *a, **k: None)
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    torch.manual_seed(recipe.seed)
    channels, days = list(recipe.channels), recipe.windows.days

    loaded = load_data(recipe, registry)
    for note in loaded.notes:
        log(f"[yellow]note:[/] {note}")
    split, parts = split_cohort(recipe, loaded, log)
    timings["load"] = time.perf_counter() - clock

    device = resolve_device(recipe.training.device)
    model = build_model(recipe, registry, device)
    loss = registry.build("losses", recipe.loss.name, recipe.loss.options, where=f"{recipe.where()}: loss")
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
        )
        privacy = accounting.to_dict()
    else:
        result: TrainingResult = train_model(
            model, loss, train_windows, val_windows, recipe.training, seed=recipe.seed, on_epoch=on_epoch
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
        temperature=recipe.sampling.temperature,
        seed=recipe.seed,
        on_batch=(lambda n: progress.update(task, advance=n)) if progress else None,
    )
    timings["sample"] = time.perf_counter() - clock

    clock = time.perf_counter()
    evaluation = {name: evaluation_windows(recipe, parts[name]) for name in ("train", "holdout")}
    n_cut = sample_days // days
    synthetic_windows = Windows(
        synthetic[:, : n_cut * days].reshape(-1, days, len(channels)),
        np.repeat([f"synthetic-{i + 1}" for i in range(len(synthetic))], n_cut),
    )
    context = EvaluationContext(
        model, channels, evaluation["train"], evaluation["holdout"], synthetic_windows, recipe.seed
    )
    if privacy:
        context.extras["privacy"] = privacy
    metrics: dict[str, Any] = {}
    task = progress.add_task("evaluating", total=len(recipe.evaluation.evaluators)) if progress else None
    for choice in recipe.evaluation.evaluators:
        evaluator = registry.build("evaluators", choice.name, choice.options, where=f"{recipe.where()}: evaluation")
        metrics[choice.name] = evaluator.evaluate(context)
        if progress:
            progress.update(task, advance=1)
    timings["evaluate"] = time.perf_counter() - clock

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
        "recipe_file": str(recipe.source) if recipe.source else None,
        "seed": recipe.seed,
        "versions": package_versions(registry),
        "device": str(device),
        "data": {
            "source": loaded.source,
            "licence": loaded.licence,
            "citation": loaded.citation,
            "fingerprint": fingerprint(loaded.frame),
            "persons": int(loaded.frame["person_id"].nunique()),
            "person_days": len(loaded.frame),
            "notes": loaded.notes,
            "clipped_values": clipped_total,
        },
        "split": split.to_dict(),
        "windows": {
            "train": window_counts(parts["train"], train_starts),
            "validation": window_counts(parts["validation"], val_starts),
            "evaluation_holdout": len(evaluation["holdout"].values),
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
    folder = write_run_folder(Path(out_dir), model, synthetic, run_info, metrics, recipe)
    return RunResult(folder, metrics, run_info)


def write_run_folder(
    out_dir: Path, model: SynthesisModel, synthetic: np.ndarray, run_info: dict, metrics: dict, recipe: Recipe
) -> Path:
    """Assemble the folder under a temporary name, then swap it into place."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp-"))
    try:
        write_daily_table(
            to_long_frame(synthetic, model.channels, recipe.sampling.start_date), staging / "synthetic.csv"
        )
        model.save(staging / "model")
        clock = time.perf_counter()
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2))
        (staging / "run.json").write_text(json.dumps(run_info, indent=2, default=str))
        write_report(staging)
        run_info["timings_seconds"]["report"] = time.perf_counter() - clock
        (staging / "run.json").write_text(json.dumps(run_info, indent=2, default=str))
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old-{time.time_ns()}")
            out_dir.rename(old)
            staging.rename(out_dir)
            shutil.rmtree(old)
        else:
            staging.rename(out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return out_dir
