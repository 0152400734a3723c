"""Recipes: YAML files that say what to train on and how, validated before anything runs.

Unknown keys and wrong types are rejected with one line naming the file and the key, because a
misspelled option silently falling back to its default is the worst kind of configuration bug.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, field_validator, model_validator

from synthwear.errors import SynthwearError, one_line, shown
from synthwear.tables import KEYS

DEVICES = r"^(auto|cpu|cuda(:(0|[1-9][0-9]{0,3}))?|mps)$"  # auto: CUDA when present; N as torch parses it


DEVICE_NAMES = "auto, cpu, cuda, cuda:N, mps"


def is_device(name: str) -> bool:
    """Whether torch would take ``name`` as a device (``auto``: CUDA when present)."""
    return re.fullmatch(DEVICES, name) is not None


MAX_DAYS = 36_525  # a hundred years of days per synthetic person
# the least temperature above 0: logits / t overflow float32 below it (1e-46 is 0.0 there) and sample
# nothing; a temperature that small is the most likely bin anyway, which 0 asks for
MIN_TEMPERATURE = 1e-3


def temperature_problem(t: float) -> str | None:
    """Why ``t`` is not a sampling temperature, or None."""
    if t == 0 or (math.isfinite(t) and t >= MIN_TEMPERATURE):
        return None
    return f"temperatures must be 0 (the most likely bin) or finite numbers >= {MIN_TEMPERATURE:g}, got {t}"


# First days a synthetic cohort may start on: a hundred years of days from either end stays within the
# days pandas' datetime64[ns] holds, so every reader of the written table (synthwear's own too) can read it
START_DATES = (date(1678, 1, 1), date(2162, 1, 1))


def check_start_date(value: date) -> date:
    """A synthetic cohort's first day, refused outside ``START_DATES`` (a recipe's or ``--start-date``)."""
    if not START_DATES[0] <= value <= START_DATES[1]:
        raise ValueError(
            f"{value.isoformat()} is outside {START_DATES[0].isoformat()}..{START_DATES[1].isoformat()}: a cohort "
            "starting there could run past the dates pandas, and so every reader of the table, can hold"
        )
    return value


# Strict scalars: YAML's ``true`` is not 1, ``"3"`` is not 3 and ``"yes"`` is not true; an integer is a number
Int = Annotated[int, Strict()]
Number = Annotated[float, Strict()]
Flag = Annotated[bool, Strict()]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # an infinite range or NaN rate is a typo


class PluginChoice(BaseModel):
    """A plugin by name plus its options (validated against the plugin's own config dataclass)."""

    model_config = ConfigDict(extra="allow")
    name: str

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class DataSection(Section):
    dataset: str | None = None  # a dataset shipped with synthwear (see `synthwear datasets`)
    path: str | None = None  # CSV or Parquet file (or an export folder with `importer`), relative to the recipe
    importer: str | None = None  # read `path` as a device export with this importer plugin
    format: Literal["auto", "csv", "parquet"] = "auto"
    # how the file writes dates: ISO8601 (YYYY-MM-DD, the default), or a strftime format such as
    # "%m/%d/%Y". Never guessed: 03/05/2021 is March or May depending on who wrote it.
    date_format: str = "ISO8601"
    columns: dict[str, str] = {}  # our name -> the file's column name, e.g. {person_id: user}
    # Per-person attributes (age group, gender, BMI...): a CSV or Parquet with person_id and any columns,
    # relative to the recipe; true: the shipped dataset's own persons table. Modelled jointly with the
    # sequences (synthwear.attributes) and written beside them; docs/model.md.
    persons: str | Flag = False

    @field_validator("date_format")
    @classmethod
    def _a_format_pandas_reads(cls, value: str) -> str:
        """A bad directive (``%Q``) would otherwise surface from pandas while the file is read."""
        if value == "mixed":
            raise ValueError("'mixed' guesses each date's format; dates are never guessed, give the file's format")
        try:
            pd.to_datetime(pd.Series(["2000-01-01"]), format=value, errors="coerce")
        except (ValueError, re.error) as err:  # re.error: a directive given twice ('%Y%Y')
            raise ValueError(f"not a date format ({one_line(err)}); e.g. ISO8601 or '%m/%d/%Y'") from None
        directives = set(re.findall(r"%([a-zA-Z])", value))
        if value != "ISO8601" and not (directives & set("YyG") and directives & set("djuwaA")):
            raise ValueError("names no year and day, so no date reads in it; e.g. ISO8601 or '%m/%d/%Y'")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> DataSection:
        if (self.dataset is None) == (self.path is None):
            raise ValueError("give exactly one of 'dataset' or 'path'")
        if self.importer and self.path is None:
            raise ValueError("'importer' reads a 'path'")
        return self


class ChannelSection(Section):
    range: tuple[Number, Number]  # public physiological range: bin edges must not come from the data
    # synthetic values are rounded to this many decimals; a float64 holds 15 to 17 significant digits,
    # and rounding to hundreds of decimals overflows (inf) or gives nothing
    decimals: Int = Field(0, ge=0, le=15)
    encoder: PluginChoice | None = None  # overrides the recipe-wide encoder for this channel

    @field_validator("range")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not value[0] < value[1]:
            raise ValueError("range must be [low, high] with low < high")
        if not math.isfinite(value[1] - value[0]):
            raise ValueError("range is wider than a float holds (high - low overflows); bins would be infinitely wide")
        return value


class WindowSection(Section):
    days: Int = Field(21, ge=2, le=MAX_DAYS)  # consecutive calendar days per training window
    stride: Int = Field(1, ge=1)  # days between the starts of two training windows of a person
    min_observed: Number = Field(0.5, ge=0.0, le=1.0)  # least share of observed cells a window needs
    # Open every sequence with a summary day (each channel's mean over the window), generated first,
    # so a synthetic person keeps one level; docs/model.md. ``summary_hidden``: the share of training
    # windows whose summary the model does not see, so it also predicts days without one.
    summary: Flag = False
    # What the summary day is the mean of: the window's own days, or all of the person's days (their
    # level over the whole record). A window's own mean fixes the sum of its days, a constraint the
    # model cannot impose day by day; a person's mean leaves each window to wander around it as real
    # windows do (measured: resting HR's persistence and the between/within ratios; docs/model.md).
    summary_of: Literal["window", "person"] = "window"
    # A second summary day with each channel's spread (mean absolute day-to-day change), drawn after the
    # level: real persons keep their volatility, calm ones and volatile ones (docs/model.md). true: every
    # channel's; a list of channels: theirs only (the others' days keep the kernels' learned width).
    spread: Flag | list[str] = False
    summary_hidden: Number = Field(0.25, ge=0.0, le=1.0)
    # Learn which days each channel is missing on and generate gaps the way the data has them
    # (sampling.complete turns them off at sampling time); docs/model.md.
    gaps: Flag = False
    # Calendar features each day's prediction is told (weekday: Monday..Sunday; month): weekday effects
    calendar: list[Literal["weekday", "month"]] = Field(default_factory=list)

    @field_validator("spread", mode="before")
    @classmethod
    def _spread_is_a_flag_or_channels(cls, value: Any) -> Any:
        """One line for what is neither (pydantic would list each member of the union's complaint)."""
        names = isinstance(value, list) and all(isinstance(v, str) for v in value)
        if not (isinstance(value, bool) or names):
            raise ValueError("must be true, false or a list of channels (e.g. [steps])")
        if value == []:
            raise ValueError("must be true, false or a list of channels, not an empty list")
        if names and len(set(value)) != len(value):
            raise ValueError("names a channel twice")
        return value

    @field_validator("calendar")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"calendar features are named once each, got {value}")
        return value

    @model_validator(mode="after")
    def _summary_to_be_of(self) -> WindowSection:
        if self.summary_of == "person" and not self.summary:
            raise ValueError("windows.summary_of: person needs windows.summary: true (it says what the summary is)")
        if self.spread and not self.summary:
            raise ValueError("windows.spread needs windows.summary: true (the spread is a second summary day)")
        return self


class SplitSection(Section):
    validation: Number = Field(0.15, gt=0, lt=1)  # share of persons for early stopping
    holdout: Number = Field(0.15, gt=0, lt=1)  # share of persons never trained on: evaluation and attacks

    @model_validator(mode="after")
    def _leaves_training_persons(self) -> SplitSection:
        if self.validation + self.holdout >= 0.9:
            raise ValueError(
                f"split.validation + split.holdout is {self.validation + self.holdout:g}; "
                "it must stay below 0.9 so that persons are left to train on"
            )
        return self


class AugmentSection(Section):
    """New persons between the real ones (synthwear.augment): a share of the training windows moved
    by one random offset per channel, of standard deviation ``shift`` times the spread of the
    training windows' levels, their days' deviations from the level scaled by a log-normal factor of
    standard deviation ``scale``. Off (0) by default; not with privacy."""

    shift: Number = Field(0.0, ge=0, le=3)
    scale: Number = Field(0.0, ge=0, le=1)
    share: Number = Field(0.5, gt=0, le=1)  # of the windows of every batch moved

    @property
    def active(self) -> bool:
        return self.shift > 0 or self.scale > 0


class TrainingSection(Section):
    epochs: Int = Field(200, ge=1)
    batch_size: Int = Field(64, ge=1)
    learning_rate: Number = Field(1e-3, gt=0)
    weight_decay: Number = Field(0.01, ge=0)
    # which parameters decay: all, or (nanoGPT's rule) weight matrices only, not embeddings, norms, biases
    weight_decay_on: Literal["all", "matrices"] = "all"
    patience: Int = Field(10, ge=1)  # epochs without validation improvement before stopping
    # learning rate: linear warm-up over the first steps, then constant or a cosine decay to a tenth
    # by the last step (the last of ``epochs``; of privacy.steps under DP)
    warmup_steps: Int = Field(0, ge=0)
    schedule: Literal["constant", "cosine"] = "constant"
    grad_clip: Number | None = Field(None, gt=0)  # clip each batch's gradient norm (not with privacy:)
    # Validate, keep and release an exponential moving average of the weights over optimizer steps, its
    # decay warming up to this (synthwear.train.WeightAverage); 0: the live weights (not with privacy)
    ema: Number = Field(0.0, ge=0, lt=1)
    # Once early stopping has chosen the number of epochs on the validation persons, train again from
    # the same starting weights on the training and validation persons together for that many epochs:
    # the model learns from every person not held out (about twice the training time; not with privacy)
    refit: Flag = False
    # Train this many times from different seeds on the same persons and keep the training whose samples
    # the validation persons tell apart least (discriminative score; synthwear.candidates): on a few
    # dozen persons one training's fidelity moves with its seed as much as recipes differ
    candidates: Int = Field(1, ge=1, le=20)
    augment: AugmentSection = Field(default_factory=AugmentSection)
    device: str = Field("auto", pattern=DEVICES)
    # bfloat16: mixed precision (autocast; weights, optimizer and loss stay float32). Pays where the
    # hardware has bf16 matmuls (AVX512-BF16/AMX CPUs, Ampere+ GPUs); elsewhere it is slower.
    precision: Literal["float32", "bfloat16"] = "float32"


class SamplingSection(Section):
    persons: Int = Field(100, ge=1)  # synthetic persons to write to synthetic.csv
    days: Int | None = Field(None, ge=1, le=MAX_DAYS)  # days per synthetic person; default: the window length
    # 1 samples the model's distribution; 0 takes the most likely bin; a mapping sets it per channel
    # (channels not named keep 1)
    temperature: Number | dict[str, Number] = Field(1.0)
    # with windows.summary: the temperature the person's level (the summary day) is drawn at, as
    # ``temperature`` a number or a mapping per channel; unset: the days' temperatures
    summary_temperature: Number | dict[str, Number] | None = None
    # lag-1 correlation, in (-1, 1), of the random quantiles a channel's days are drawn at (a number
    # or a mapping per channel; channels not named: 0, independent draws); `auto`: fitted per channel
    # after training to the training persons' day-to-day persistence; docs/model.md "Persistence"
    persistence: Number | dict[str, Number] | Literal["auto"] = Field(0.0)

    @field_validator("start_date")
    @classmethod
    def _readable_start(cls, value: date | None) -> date | None:
        return value if value is None else check_start_date(value)

    @field_validator("temperature", "summary_temperature")
    @classmethod
    def _non_negative(cls, value: float | dict[str, float] | None) -> float | dict[str, float] | None:
        for t in value.values() if isinstance(value, dict) else [] if value is None else [value]:
            if temperature_problem(t):
                raise ValueError(temperature_problem(t))
        return value

    @field_validator("persistence", mode="before")
    @classmethod
    def _auto_or_numbers(cls, value: Any) -> Any:
        if isinstance(value, str) and value != "auto":
            raise ValueError("persistence is a number in (-1, 1), a mapping per channel or auto")
        return value

    @field_validator("persistence")
    @classmethod
    def _correlation(cls, value: float | dict[str, float] | str) -> float | dict[str, float] | str:
        for rho in value.values() if isinstance(value, dict) else [] if value == "auto" else [value]:
            if not -1 < rho < 1:  # also refuses NaN
                raise ValueError(f"persistence must be a correlation strictly between -1 and 1, got {rho}")
        return value

    def persistences(self, channels: list[str], fitted: list[float] | None = None) -> list[float]:
        """One persistence per channel, in the recipe's channel order (0 where none is named); with
        ``auto`` the model's ``fitted`` ones (``synthwear.persistence``)."""
        if self.persistence != "auto":
            return per_channel(self.persistence, channels, default=0.0)
        if fitted is None or len(fitted) != len(channels):
            raise SynthwearError(
                "sampling.persistence is auto, and the model holds no fitted persistence per channel "
                "(it was trained before persistence could be fitted): give numbers instead"
            )
        return list(fitted)

    def temperatures(self, channels: list[str]) -> list[float]:
        """One temperature per channel, in the recipe's channel order."""
        return per_channel(self.temperature, channels)

    def summary_temperatures(self, channels: list[str]) -> list[float]:
        """The summary day's temperature per channel (the days' where none is set)."""
        if self.summary_temperature is None:
            return self.temperatures(channels)
        return per_channel(self.summary_temperature, channels)

    # first day of every synthetic person; unset: drawn from the training persons' first days (kept in
    # the model), or 2000-01-01 where the model keeps none (differential privacy)
    start_date: date | None = None
    complete: Flag = False  # with windows.gaps: no gaps, a value on every day
    # with data.persons: whom to generate, e.g. ["gender == 'female'", "age_group == '>=30'"] (all must hold),
    # and quotas per category, e.g. {gender: {female: 0.5, male: 0.5}}; docs/model.md
    where: list[str] = Field(default_factory=list)
    quotas: dict[str, dict[str, Number]] = Field(default_factory=dict)


def per_channel(value: float | dict[str, float], channels: list[str], default: float = 1.0) -> list[float]:
    """A setting for every channel: one number for all, or a mapping (channels not named: ``default``)."""
    if not isinstance(value, dict):
        return [value] * len(channels)
    return [value.get(c, default) for c in channels]


class EvaluationSection(Section):
    evaluators: list[PluginChoice] = [
        PluginChoice(name=name)
        for name in (
            "traces",
            "marginals",
            "temporal",
            "discriminative",
            "tstr",
            "forecast",
            "similarity",
            "sdmetrics_quality",
        )
    ]
    max_windows: Int = Field(2000, ge=1)  # real windows per side handed to evaluators (a seeded subsample)

    @field_validator("evaluators")
    @classmethod
    def _named_once(cls, value: list[PluginChoice]) -> list[PluginChoice]:
        names = [choice.name for choice in value]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"evaluator {twice[0]!r} is listed twice; metrics.json keeps one result per evaluator")
        return value


class PrivacySection(Section):
    """Person-level DP-SGD: each step samples training persons (Poisson, rate ``sample_rate``)."""

    target_epsilon: Number = Field(gt=0)
    target_delta: Number | None = Field(None, gt=0, lt=1)  # None: 1 / (10 x training persons), recorded in run.json
    max_grad_norm: Number = Field(1.0, gt=0)  # clipping bound on one person's gradient per step
    accountant: Literal["prv", "rdp"] = "prv"
    sample_rate: Number = Field(0.25, gt=0, le=1)  # a person's chance to be in a step; must be 1/k (Opacus' convention)
    steps: Int = Field(500, ge=1)  # noisy steps; the noise is calibrated so the budget is spent exactly here
    checkpoints: Int = Field(10, ge=1)  # evenly spaced checkpoints the validation persons choose among

    @field_validator("sample_rate")
    @classmethod
    def _reciprocal_of_integer(cls, value: float) -> float:
        if abs(1 / value - round(1 / value)) > 1e-9:
            raise ValueError("sample_rate must be 1/k for a whole number k (e.g. 0.5, 0.25, 0.1)")
        return value


class BaseSection(Section):
    """Start from a trained model instead of random weights: a shipped base (``synthwear bases``)
    trained on public data, or a model folder. Channels, calendar features and attributes the base
    knows keep its weights; the others get new, randomly initialised embeddings and heads."""

    model: str  # a shipped base's name, or a model folder (relative to the recipe)
    # what training changes: everything; the last block and the output heads; the output heads (with the
    # final norm); every bias (DP-BiTFiT); or low-rank adapters on every block's linear layers plus the
    # heads. New channels' embeddings and heads are trained whatever the choice: the base has nothing
    # for them. The base itself stays a candidate: validation keeps it if training only made it worse.
    train: Literal["all", "last_layers", "heads", "biases", "adapters"] = "all"
    rank: Int = Field(4, ge=1)  # the adapters' rank (train: adapters)
    # the base's channels the recipe lacks are generated as the base generates them (into the training
    # persons' days too, before training), read by the recipe's channels, never scored or written
    # (``SynthesisModel.latent``); false: the model reads them as missing on every day, a condition the
    # base rarely saw (worse on a cohort without resting HR: docs/privacy.md)
    keep_channels: Flag = True


# Settings refused under ``privacy:``: (the setting, whether a recipe uses it, why not). Each either reads
# the training persons outside what the accountant counts, or does what DP-SGD itself must do.
NOT_WITH_PRIVACY: tuple[tuple[str, Callable[[Recipe], bool], str], ...] = (
    (
        "training.precision other than float32",
        lambda r: r.training.precision != "float32",
        "per-person gradients are clipped in float32",
    ),
    (
        "training.refit",
        lambda r: r.training.refit,
        "DP-SGD's validation persons choose among its checkpoints, and the accountant counts the training persons only",
    ),
    ("training.candidates", lambda r: r.training.candidates > 1, "every candidate would spend the budget again"),
    (
        "sampling.persistence: auto",
        lambda r: r.sampling.persistence == "auto",
        "it is fitted to the training persons' day-to-day persistence, which the accountant does not count; "
        "give numbers instead",
    ),
    (
        "training.augment",
        lambda r: r.training.augment.active,
        "its offsets are sized by the training persons' levels, which the accountant does not count",
    ),
    (
        "training.grad_clip",
        lambda r: r.training.grad_clip is not None,
        "DP-SGD clips each person's gradient (privacy.max_grad_norm)",
    ),
    (
        "training.ema",
        lambda r: bool(r.training.ema),
        "the weight average is not built for Opacus' per-sample gradient module yet",
    ),
)


class Recipe(Section):
    name: str  # names the run folder runs/<name>/, so it must be a plain folder name
    seed: Int = Field(0, ge=0, le=2**32 - 1)  # numpy and torch generators take unsigned 32-bit seeds
    data: DataSection | None = None  # what `synthwear run` trains on; the Python API may pass a DataFrame
    channels: dict[str, ChannelSection] = Field(min_length=1)
    encoder: PluginChoice = PluginChoice(name="binning")
    windows: WindowSection = WindowSection()
    split: SplitSection = SplitSection()
    generator: PluginChoice = PluginChoice(name="transformer")
    loss: PluginChoice = PluginChoice(name="shake_shake")
    training: TrainingSection = TrainingSection()
    sampling: SamplingSection = SamplingSection()
    evaluation: EvaluationSection = EvaluationSection()
    privacy: PrivacySection | None = None  # set: train with person-level DP-SGD (synthwear.privacy)
    base: BaseSection | None = None  # set: fine-tune a trained model (synthwear.transfer) instead of training anew

    source: Path | None = Field(None, exclude=True)  # the file it was read from, for messages and paths

    @field_validator("name")
    @classmethod
    def _folder_name(cls, value: str) -> str:
        # letters and digits of any script (a folder name on every current file system), at most 255 bytes
        if not re.fullmatch(r"[^\W_][\w.-]{0,127}", value) or len(value.encode()) > 255:
            raise ValueError(
                "name must be a plain folder name (letters, digits, '.', '_', '-'; not starting with '.', '_' "
                "or '-'; no '/'; at most 128 characters), since the run is written to runs/<name>/"
            )
        return value

    @field_validator("base", mode="before")
    @classmethod
    def _base_by_name(cls, value: Any) -> Any:
        return {"model": value} if isinstance(value, str) else value  # `base: lifesnaps` is `base: {model: lifesnaps}`

    @model_validator(mode="after")
    def _channels_are_not_keys(self) -> Recipe:
        """A channel named ``date`` or ``person_id`` would read the key column as numbers."""
        for name in self.channels:
            if name in KEYS:
                raise ValueError(
                    f"channels: {name!r} is a key column of the daily table, not a channel; name the channel "
                    "otherwise and map the file's column to it with data.columns"
                )
            if not name.strip():
                raise ValueError(f"channels: {name!r} is blank; a channel is named after its column")
        return self

    @model_validator(mode="after")
    def _columns_map_fields_once(self) -> Recipe:
        """``data.columns`` maps our names to the file's: a misspelled key would be ignored silently, and
        one file column read as two fields is a copy-paste slip."""
        columns = self.data.columns if self.data else {}
        unknown = sorted(set(columns) - {*KEYS, *self.channels})
        if unknown:
            raise ValueError(
                f"data.columns maps {unknown[0]!r}, which is neither {' nor '.join(KEYS)} nor a channel "
                "(it maps our name to the file's, e.g. {person_id: user})"
            )
        read = {name: columns.get(name, name) for name in (*KEYS, *self.channels)}
        for column in set(read.values()):
            fields = [name for name, read_from in read.items() if read_from == column]
            if len(fields) > 1:
                raise ValueError(
                    f"data.columns reads the file's column {column!r} as both {fields[0]!r} and {fields[1]!r}"
                )
        return self

    @model_validator(mode="after")
    def _temperatures_name_channels(self) -> Recipe:
        for key in ("temperature", "summary_temperature", "persistence"):
            value = getattr(self.sampling, key)
            unknown = sorted(set(value) - set(self.channels)) if isinstance(value, dict) else []
            if unknown:
                raise ValueError(f"sampling.{key} names {unknown[0]!r}, which is not a channel")
        return self

    @model_validator(mode="after")
    def _spread_names_channels(self) -> Recipe:
        spread = self.windows.spread
        unknown = sorted(set(spread) - set(self.channels)) if isinstance(spread, list) else []
        if unknown:
            raise ValueError(f"windows.spread names {unknown[0]!r}, which is not a channel")
        return self

    def without_spread(self) -> tuple[str, ...]:
        """The channels a ``windows.spread`` list leaves out (none when it is true or false)."""
        spread = self.windows.spread
        return tuple(c for c in self.channels if c not in spread) if isinstance(spread, list) else ()

    @model_validator(mode="after")
    def _private_settings_apply(self) -> Recipe:
        """Settings that read the training persons outside DP-SGD's accounting, or that it does itself."""
        if self.privacy:
            for setting, in_use, why in NOT_WITH_PRIVACY:
                if in_use(self):
                    raise ValueError(f"{setting} does not apply with privacy: {why}")
        return self

    @model_validator(mode="after")
    def _candidates_apart_from_validation(self) -> Recipe:
        if self.training.candidates > 1 and self.training.refit:
            raise ValueError(
                "training.candidates does not apply with training.refit: the validation persons that choose "
                "among the candidates would be trained on"
            )
        return self

    def where(self) -> str:
        return str(self.source) if self.source else "recipe"

    def resolve_path(self, path: str) -> Path:
        """Paths in a recipe are relative to the recipe's folder, not to the working directory."""
        base = self.source.parent if self.source else Path.cwd()
        return (base / Path(path).expanduser()).resolve()

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def parse_recipe(raw: Any, source: Path | None = None) -> Recipe:
    """Validate a recipe mapping; errors become one line naming the file and the key."""
    where = str(source) if source else "recipe"
    if not isinstance(raw, dict):
        raise SynthwearError(f"{where}: a recipe must be a mapping of keys to values")
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as err:
        raise SynthwearError(f"{where}: {describe_error(err)}") from None
    recipe.source = source
    return recipe


class StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error (silently keeping
    the last ``training:`` of two is a configuration bug nobody would find), and that plain numbers and
    booleans are read as YAML 1.2 reads them: PyYAML's YAML 1.1 takes ``010`` for 8 (octal),
    ``12:30:00`` for 45000 (base 60), ``yes``/``off`` for booleans, and ``1e-3`` for text."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults`: its keys may be overridden
                continue
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, list | dict):
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    "a key must be a plain value (a name or a number), not a list or a mapping",
                    key_node.start_mark,
                )
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice (first on line {seen[key] + 1})", key_node.start_mark
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


YAML12_SCALARS = {  # the YAML 1.2 core schema's plain booleans and numbers, with the characters they start with
    "tag:yaml.org,2002:bool": (r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    "tag:yaml.org,2002:int": (r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    "tag:yaml.org,2002:float": (
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+.0123456789",
    ),
}
StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag not in YAML12_SCALARS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _tag, (_pattern, _first) in YAML12_SCALARS.items():
    StrictLoader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))


def yaml12_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    """An integer as YAML 1.2 writes it: decimal (``010`` is ten), ``0o`` octal, ``0x`` hexadecimal."""
    text = loader.construct_scalar(node)
    base = {"0o": 8, "0x": 16}.get(text[:2], 10)
    return int(text[2:] if base != 10 else text, base)


StrictLoader.add_constructor("tag:yaml.org,2002:int", yaml12_int)


def yaml_timestamp(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    """YAML's own dates, with a day that does not exist (``2021-02-30``) refused at its line."""
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError as err:
        raise yaml.constructor.ConstructorError(None, None, f"{node.value}: {err}", node.start_mark) from None


StrictLoader.add_constructor("tag:yaml.org,2002:timestamp", yaml_timestamp)


def load_recipe(path: Path) -> Recipe:
    """Read and validate a YAML recipe."""
    path = Path(path)
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=StrictLoader)  # StrictLoader is a SafeLoader
    except FileNotFoundError:
        raise SynthwearError(f"{path}: no such recipe file") from None
    except IsADirectoryError:
        raise SynthwearError(f"{path}: is a folder, not a recipe file") from None
    except UnicodeDecodeError:
        raise SynthwearError(f"{path}: not a text file (a recipe is YAML)") from None
    except OSError as err:
        raise SynthwearError(f"{path}: cannot be read ({err.strerror})") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark else ""
        problem = one_line(getattr(err, "problem", None) or err)
        raise SynthwearError(f"{path}: {line}not valid YAML ({problem})") from None
    except ValueError as err:  # YAML's own constructors: a date such as 2021-13-01
        raise SynthwearError(f"{path}: not valid YAML ({one_line(err)})") from None
    return parse_recipe(raw, source=path)


def describe_error(err: ValidationError) -> str:
    first = err.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "(top level)"
    reason = first["msg"].removeprefix("Value error, ")  # pydantic's prefix for a validator's own words
    if first["type"] == "extra_forbidden":
        message = f"unknown key {key!r}"
    elif not first["loc"]:  # a rule across sections names its keys itself
        message = reason
    elif first["type"] == "missing":
        message = f"missing key {key!r}"
    elif first["loc"][-1] == "[key]":  # YAML reads an unquoted true, 1 or null as a value, not a name
        section = ".".join(str(part) for part in first["loc"][:-2])
        written = json.dumps(first.get("input"))
        message = (
            f'{section}: the key {written} is not a name (YAML reads it unquoted as a value); quote it: "{written}"'
        )
    else:
        message = f"key {key!r}: {reason} (got {shown(first.get('input'))})"
    more = err.error_count() - 1
    return message + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")
