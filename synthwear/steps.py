"""The named steps of a synthesis job: load -> split -> encode -> train -> sample -> evaluate.

Each is a small public function of a recipe and what the step before produced; ``Synthesizer``
(the Python API) calls them in order, and the command line's run folder is written around that
same path (``synthwear.pipeline``), so the API and the CLI cannot drift apart.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from synthwear.attributes import AttributeModel
from synthwear.checkpoint import Checkpointing
from synthwear.cohort import Cohort
from synthwear.covariates import PRESENCE_SIZE, covariate_sizes
from synthwear.datasets import get_dataset
from synthwear.errors import SynthwearError, shown
from synthwear.interfaces import Encoder, EvaluationContext, GeneratorSpec, Loss, Windows
from synthwear.model import SynthesisModel
from synthwear.plugins import Registry
from synthwear.privacy import train_private
from synthwear.recipe import Recipe
from synthwear.split import PersonSplit, find_duplicate_persons, split_persons
from synthwear.summary import person_summary
from synthwear.tables import fingerprint, read_daily_table, read_person_table, table_place, validate_daily_table
from synthwear.train import TrainingResult, WindowTokens, train_model, window_tokens
from synthwear.transfer import latent_channels, latent_sizes, with_latent_drawn

Log = Callable[[str], None]


# --- load ---------------------------------------------------------------------------------------
@dataclass
class LoadedData:
    """The validated daily table and where it came from (for run.json and the report)."""

    frame: pd.DataFrame
    source: str
    licence: str | None = None
    citation: str | None = None
    notes: list[str] = field(default_factory=list)
    persons: pd.DataFrame | None = None  # the per-person attributes table, when the recipe names one
    persons_source: str | None = None


def nonnegative_channels(recipe: Recipe) -> tuple[str, ...]:
    return tuple(name for name, spec in recipe.channels.items() if spec.range[0] >= 0)


def load_data(recipe: Recipe, registry: Registry) -> LoadedData:
    """Read the recipe's data source (shipped dataset, table file, or device export) and validate it."""
    channels, data, nonnegative = list(recipe.channels), recipe.data, nonnegative_channels(recipe)
    if data is None:
        raise SynthwearError(
            f"{recipe.where()}: no data: section (name a dataset or a path; the Python API takes a DataFrame)"
        )
    if data.dataset:
        dataset = get_dataset(data.dataset)
        frame = read_daily_table(dataset.path, channels, columns=data.columns, nonnegative=nonnegative)
        loaded = LoadedData(frame, f"synthwear dataset {dataset.name}", dataset.licence, dataset.citation)
        return with_persons(loaded, recipe, dataset.persons)
    return with_persons(read_data_path(recipe, registry), recipe, None)


def read_data_path(recipe: Recipe, registry: Registry) -> LoadedData:
    """The recipe's table file or device export."""
    channels, data, nonnegative = list(recipe.channels), recipe.data, nonnegative_channels(recipe)
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


def with_persons(loaded: LoadedData, recipe: Recipe, shipped: Path | None) -> LoadedData:
    """The recipe's persons table (``data.persons``: a path, or true for the shipped dataset's own)."""
    wanted = recipe.data.persons
    if wanted is False:
        return loaded
    if wanted is True:
        if shipped is None:
            raise SynthwearError(f"{recipe.where()}: data.persons: true, but {loaded.source} ships no persons table")
        path = shipped
    else:
        path = recipe.resolve_path(wanted)
    loaded.persons, loaded.persons_source = read_person_table(path), str(path)
    return loaded


def frame_data(
    recipe: Recipe, frame: pd.DataFrame, source: str = "the DataFrame", *, empty_channels: bool = False
) -> LoadedData:
    """A caller's own daily table (the Python API's ``fit(frame)``), checked like a file would be;
    ``empty_channels``: a channel may have no observed value (a history to continue)."""
    if not isinstance(frame, pd.DataFrame):
        raise SynthwearError(f"{source}: expected a pandas DataFrame, got {type(frame).__name__}")
    columns = recipe.data.columns if recipe.data else {}
    checked = validate_daily_table(
        frame,
        list(recipe.channels),
        source=source,
        columns=columns,
        nonnegative=nonnegative_channels(recipe),
        empty_channels=empty_channels,
    )
    return LoadedData(checked, source)


# --- split --------------------------------------------------------------------------------------
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
        log(f"persons {', '.join(group)} share identical days; kept on the same side of the split")
    usable = (
        f"a usable window: windows.days = {recipe.windows.days} days, at least "
        f"windows.min_observed = {recipe.windows.min_observed:g} of them observed"
    )
    if 0 < len(persons) < len(cohort.person_ids):  # none: split_persons refuses in one line
        left_out = len(cohort.person_ids) - len(persons)
        log(f"{loaded.source}: {left_out} of {len(cohort.person_ids)} persons are left out: none has {usable}")
    split = split_persons(
        persons,
        validation=recipe.split.validation,
        holdout=recipe.split.holdout,
        seed=recipe.seed,
        duplicate_groups=duplicates,
        source=f"{loaded.source} ({usable})",
        holdout_persons=holdout_persons,
    )
    return split, {
        name: cohort.select(np.flatnonzero(np.isin(cohort.person_ids, getattr(split, name))))
        for name in ("train", "validation", "holdout")
    }


# --- person attributes --------------------------------------------------------------------------
def fit_attributes(recipe: Recipe, loaded: LoadedData, parts: dict[str, Cohort], log: Log) -> AttributeModel | None:
    """The attribute model of the training persons' rows of the persons table, and every part's persons'
    codes (``Cohort.attributes``; a person the table lacks has every attribute unknown). None without a
    table, and under differential privacy, whose guarantee the attribute model does not share."""
    if loaded.persons is None:
        return None
    if recipe.privacy:
        log(f"{loaded.persons_source}: not modelled under differential privacy (the attribute model is not private)")
        return None
    table, source = loaded.persons, loaded.persons_source
    clashes = [str(c) for c in table.columns if c == "date" or c in recipe.channels]
    if clashes:
        raise SynthwearError(
            f"{source}: column {clashes[0]!r} has the name of a column of the daily table (date, the channels), "
            "which cohorts are written beside; rename it"
        )
    ids = table["person_id"].astype(str)
    if ids.duplicated().any():
        row = int(np.flatnonzero(ids.duplicated().to_numpy())[0])
        raise SynthwearError(f"{table_place(source).at(row)}: person_id {shown(ids.iloc[row])} appears twice")
    training = table[ids.isin(parts["train"].person_ids)]
    if training.empty:
        raise SynthwearError(f"{source}: none of the training persons is in the persons table (check person_id)")
    if len(training) < len(parts["train"].person_ids):
        log(
            f"{source}: has rows for {len(training)} of the {len(parts['train'].person_ids)} training persons; "
            "the others' attributes are unknown to the model (check person_id)"
        )
    model = AttributeModel.fit(training.reset_index(drop=True), source=source, seed=recipe.seed)
    for note in model.notes:
        log(f"persons table: {note}")
    attach_attributes(model, loaded, parts)
    return model


def attach_attributes(model: AttributeModel, loaded: LoadedData, parts: dict[str, Cohort]) -> None:
    """Each part's persons' attribute codes (``Cohort.attributes``) from the persons table; a value no
    training person had (an unseen category) is unknown to the model, as a missing one is."""
    by_id = loaded.persons.assign(person_id=loaded.persons["person_id"].astype(str)).set_index("person_id")
    for part in parts.values():
        rows = by_id.reindex(part.person_ids).reset_index(drop=True)
        part.attributes = model.encode(rows, source=loaded.persons_source, unseen="missing")


def data_fingerprint(loaded: LoadedData) -> str:
    """What a run was trained on: the daily table's fingerprint, and the persons table's when there is one."""
    daily = fingerprint(loaded.frame)
    return daily if loaded.persons is None else f"{daily}:{fingerprint(loaded.persons)}"


def changed_source(loaded: LoadedData, trained_on: str) -> str:
    """Which file differs from the run's ``data_fingerprint``: the daily table's, else the persons table's
    (edited, added or removed), so that an error names the file the user changed."""
    if trained_on.split(":sha256:")[0] != fingerprint(loaded.frame):
        return loaded.source
    return loaded.persons_source or loaded.source


# --- the model and its loss, as the recipe names them ---------------------------------------------
def build_encoders(recipe: Recipe, registry: Registry) -> list[Encoder]:
    """Each channel's encoder over its public range, as the recipe names it."""
    return [
        registry.build("encoders", choice.name, choice.options, *spec.range, where=f"{recipe.where()}: channels.{name}")
        for name, spec in recipe.channels.items()
        for choice in [spec.encoder or recipe.encoder]
    ]


def check_model_options(recipe: Recipe, registry: Registry) -> None:
    """The encoders' and the generator's options, checked by the plugins' own schemas before any data
    is read (the generator is built once the data says its vocabulary)."""
    build_encoders(recipe, registry)
    registry.config("generators", recipe.generator.name, recipe.generator.options, where=f"{recipe.where()}: generator")


def build_model(
    recipe: Recipe,
    registry: Registry,
    device: torch.device,
    attributes: AttributeModel | None = None,
    base: SynthesisModel | None = None,
) -> SynthesisModel:
    """Encoders and generator as the recipe names them, built through the plugin registry; with
    ``attributes`` the sequences read each person's attribute codes; with ``base`` (and
    ``base.keep_channels``) the base's channels the recipe lacks are modelled as latent channels."""
    where = recipe.where()
    encoders = build_encoders(recipe, registry)
    summary = int(recipe.windows.summary) + bool(recipe.windows.spread)  # summary days: the level, the spread
    gaps, calendar = recipe.windows.gaps, tuple(recipe.windows.calendar)
    sizes = covariate_sizes(calendar, tuple(attributes.code_sizes) if attributes else ())
    latent = latent_channels(recipe, base)
    values = [e.n_tokens for e in encoders] + (latent_sizes(base, latent) if latent else [])
    vocab = values + [PRESENCE_SIZE] * len(values) * gaps + list(sizes)
    gen_spec = GeneratorSpec(tuple(vocab), recipe.windows.days + summary, summary)
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
        gaps,
        calendar,
        attributes=attributes,
        without_spread=recipe.without_spread(),
        latent=latent,
    )


def build_loss(recipe: Recipe, registry: Registry, base: SynthesisModel | None = None) -> Loss:
    """The recipe's loss, told the predicted channels' names when it asks (the optional
    ``bind(channels)``): the recipe's channels, the latent ones ``base`` gives (no day of theirs is
    observed, so they add nothing to it), then with ``windows.gaps`` "<channel> observed" each."""
    where = f"{recipe.where()}: loss"
    loss = registry.build("losses", recipe.loss.name, recipe.loss.options, where=where)
    bind = getattr(loss, "bind", None)
    if bind is not None:
        modelled = list(recipe.channels) + list(latent_channels(recipe, base))
        try:
            bind(modelled + [f"{name} observed" for name in modelled if recipe.windows.gaps])
        except ValueError as err:  # a third-party loss refusing the channels
            raise SynthwearError(f"{where}: {err}") from None
    return loss


# --- encode -------------------------------------------------------------------------------------
@dataclass
class Encoded:
    """The training and validation windows as token start rows, and what encoding them noticed."""

    train: WindowTokens
    validation: WindowTokens
    train_persons: np.ndarray  # each training window's person: DP-SGD samples persons, not windows
    counts: dict[str, dict[str, int]]  # per part: windows, complete, with_gaps, persons
    clipped: dict[str, int]  # per channel: values outside the recipe's range, clipped to it
    refit: WindowTokens | None = None  # training.refit: every training and validation window


def encode(
    recipe: Recipe, model: SynthesisModel, parts: dict[str, Cohort], log: Log, base: SynthesisModel | None = None
) -> Encoded:
    """Tokenize the training and validation persons and cut their windows (validation: a seeded
    subsample of at most ``evaluation.max_windows``); no window to train or validate on is an error.
    The model's latent channels are drawn by ``base`` (``transfer.with_latent_drawn``)."""
    days, stride, least = recipe.windows.days, recipe.windows.stride, recipe.windows.min_observed
    tokens, clipped = {}, {}
    for name, part in parts.items():
        tokens[name], clipped[name] = model.day_tokens(part.values, part.dates(), part.row_attributes())
        if model.latent and name != "holdout":
            with_latent_drawn(tokens[name], model, base, part, recipe.seed)
        if recipe.windows.summary_of == "person":  # every day carries its person's summary (training_pair)
            scored = list(model.spec.vocab_sizes[: model.n_scored])
            summary = person_summary(tokens[name][:, : model.n_scored], part.offsets, model.summary, scored)
            tokens[name] = np.concatenate([tokens[name], summary], axis=1)
    starts = {
        "train": parts["train"].window_starts(days, stride, least),
        "validation": subsample(
            parts["validation"].window_starts(days, stride, least), recipe.evaluation.max_windows, recipe.seed
        ),
    }
    if len(starts["train"]) == 0 or len(starts["validation"]) == 0:
        raise SynthwearError(f"no {days}-day window with enough observed days for training or validation")
    clipped_total = {c: int(sum(clipped[p][i] for p in parts)) for i, c in enumerate(model.channels)}
    if any(clipped_total.values()):
        log(f"values outside the recipe's ranges were clipped: {clipped_total}")
    return Encoded(
        window_tokens(tokens["train"], starts["train"], days),
        window_tokens(tokens["validation"], starts["validation"], days),
        parts["train"].person_of(starts["train"]),
        {name: window_counts(parts[name], part_starts, days) for name, part_starts in starts.items()},
        clipped_total,
        refit_windows(tokens, starts["train"], parts["validation"].window_starts(days, stride, least), days)
        if recipe.training.refit
        else None,
    )


def refit_windows(tokens: dict[str, np.ndarray], train: np.ndarray, validation: np.ndarray, days: int) -> WindowTokens:
    """Every training and every validation window (not the subsample validation scores) as one set."""
    rows = np.concatenate([tokens["train"], tokens["validation"]])
    return window_tokens(rows, np.concatenate([train, validation + len(tokens["train"])]), days)


def window_counts(part: Cohort, starts: np.ndarray, days: int) -> dict[str, int]:
    complete = int((part.observed_share(starts, days) == 1.0).sum())
    return {
        "windows": len(starts),
        "complete": complete,
        "with_gaps": len(starts) - complete,
        "persons": part.n_persons,
    }


# --- train --------------------------------------------------------------------------------------
def train(
    recipe: Recipe,
    model: SynthesisModel,
    loss: Loss,
    encoded: Encoded,
    *,
    seed: int | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    checkpointing: Checkpointing | None = None,
) -> tuple[TrainingResult, dict[str, Any] | None]:
    """Train the model in place: DP-SGD per person when the recipe has a privacy section (then also
    what was spent), plain training otherwise; ``seed`` (default: the recipe's) deals the batches."""
    common = {
        "seed": recipe.seed if seed is None else seed,
        "on_epoch": on_epoch,
        "hide_summary": recipe.windows.summary_hidden,
        "checkpointing": checkpointing,
        "keep_start": recipe.base is not None,
    }
    if recipe.privacy:
        persons = encoded.train_persons
        result, accounting = train_private(
            model, loss, encoded.train, persons, encoded.validation, recipe.training, recipe.privacy, **common
        )
        return result, accounting.to_dict()
    result = train_model(model, loss, encoded.train, encoded.validation, recipe.training, refit=encoded.refit, **common)
    return result, None


# --- evaluate -----------------------------------------------------------------------------------
def evaluation_windows(recipe: Recipe, part: Cohort) -> Windows:
    """The real windows evaluators see: non-overlapping, at most ``evaluation.max_windows`` (a seeded subsample)."""
    days = recipe.windows.days
    starts = part.window_starts(days, days, recipe.windows.min_observed)
    return part.windows(subsample(starts, recipe.evaluation.max_windows, recipe.seed), days)


def subsample(starts: np.ndarray, limit: int, seed: int) -> np.ndarray:
    if len(starts) <= limit:
        return starts
    return np.sort(np.random.default_rng(seed).choice(starts, limit, replace=False))


def evaluation_context(
    recipe: Recipe,
    parts: dict[str, Cohort],
    model: SynthesisModel,
    synthetic: np.ndarray,
    starts: np.ndarray,
    privacy: dict[str, Any] | None,
    attributes: np.ndarray | None = None,
) -> EvaluationContext:
    """What every evaluator sees: real training and holdout windows, and the synthetic cohort (persons
    starting on ``starts``, with attribute codes ``attributes``) cut into windows."""
    days, channels = recipe.windows.days, list(recipe.channels)
    evaluation = {name: evaluation_windows(recipe, parts[name]) for name in ("train", "holdout")}
    n_cut = synthetic.shape[1] // days
    window_starts = np.asarray(starts, dtype="datetime64[D]")[:, None] + (np.arange(n_cut) * days).astype(
        "timedelta64[D]"
    )
    synthetic_windows = Windows(
        synthetic[:, : n_cut * days].reshape(-1, days, len(channels)),
        np.repeat([f"synthetic-{i + 1}" for i in range(len(synthetic))], n_cut),
        window_starts.reshape(-1),
        None if attributes is None else np.repeat(attributes, n_cut, axis=0),
    )
    context = EvaluationContext(
        model, channels, evaluation["train"], evaluation["holdout"], synthetic_windows, recipe.seed
    )
    if privacy:
        context.extras["privacy"] = privacy
    return context


def package_versions(registry: Registry) -> dict[str, str]:
    names = {"synthwear", "torch", "numpy", "pandas", "pluggy", "safetensors"}
    names |= {e.package for e in registry.entries() if e.version}
    versions = {"python": platform.python_version()}
    for name in sorted(names):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    return versions
