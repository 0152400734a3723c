"""The roles a plugin can fill. The engine talks to plugins only through these shapes.

Token convention shared by encoders, generators and losses: an encoder maps a channel's values to
ids ``0 .. n_tokens-1`` and a missing value to ``MISSING`` (-1). A generator reads, per channel,
ids ``0 .. n_tokens-1``, ``n_tokens`` for "missing" and ``n_tokens + 1`` for "start of sequence",
and predicts only value ids (a softmax over ``n_tokens``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    import torch

    from synthwear.model import SynthesisModel

MISSING = -1


@runtime_checkable
class Encoder(Protocol):
    """Turns one channel's real values into token ids and back."""

    n_tokens: int

    def encode(self, values: np.ndarray) -> tuple[np.ndarray, int]:
        """Map float values (NaN = missing) to int64 ids (MISSING for NaN); also return how many
        values fell outside the encoder's range and were clipped."""

    def decode(self, tokens: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Map ids back to values in the channel's units."""

    def representatives(self) -> np.ndarray:
        """One value per id (``n_tokens``,), used for point forecasts such as the median."""

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable options that rebuild this encoder through its factory."""


@dataclass(frozen=True)
class GeneratorSpec:
    """What the engine tells a generator factory about the data it will model."""

    vocab_sizes: tuple[int, ...]  # value ids per channel; inputs also use n (missing) and n+1 (start)
    max_days: int  # longest context the generator must attend over (the window length)
    # Summary days opening every sequence (after the start), drawn before the days: 0 none; 1 the
    # level (position 1: each channel's mean bin, over the window or the person); 2 also the spread
    # (position 2: each channel's mean absolute day-to-day change d in bins, as the id
    # ``synthwear.summary.spread_id`` gives). MISSING (the "missing" id) where a summary is hidden or unknown.
    summary: int = 0


@runtime_checkable
class Generator(Protocol):
    """A ``torch.nn.Module`` predicting day t+1 from days <= t, one softmax per channel.

    Optional, for speed: ``extend(tokens, cache) -> (logits, cache)``, the logits of new days that
    follow the cached ones (a KV cache). Optional, for a day's channels predicted one after another:
    ``chained = True``, ``__call__(tokens, same_day=ids)`` where channel c also reads the predicted
    day's channels < c, ``encode(tokens) -> hidden`` (with ``hidden.last()``), ``logits(hidden,
    same_day, channels) -> list`` and, for speed, ``encode_more(tokens, cache) -> (hidden, cache)``;
    the sampler then draws a day's channels in order (the transformer's ``chain``).
    """

    def __call__(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        """tokens (B, T, C) int64 -> per channel logits (B, T, n_tokens_c); position t predicts
        day t+1 of the sequence whose first input is the start token."""

    def parameters(self): ...

    def state_dict(self): ...


@runtime_checkable
class Loss(Protocol):
    """Combines per-channel cross-entropies into the scalar that training minimises."""

    def __call__(self, logits: list[torch.Tensor], targets: torch.Tensor, *, training: bool) -> torch.Tensor:
        """targets (B, T, C) int64 with MISSING where the day's value is unknown (masked out)."""


@dataclass
class Windows:
    """Real or synthetic windows: values (N, T, C) in channel units (NaN = missing) and whose they are."""

    values: np.ndarray
    person: np.ndarray  # (N,) person id of each window
    start: np.ndarray | None = None  # (N,) first date of each window, datetime64[D], when known
    attributes: np.ndarray | None = None  # (N, A) attribute codes of each window's person, when modelled


@dataclass
class EvaluationContext:
    """Everything an evaluator may look at. Train and holdout are disjoint sets of persons."""

    model: SynthesisModel
    channels: list[str]
    train: Windows
    holdout: Windows
    synthetic: Windows
    seed: int
    extras: dict[str, Any] = field(default_factory=dict)  # facts of the run (e.g. privacy accounting)


@runtime_checkable
class Evaluator(Protocol):
    """Computes named results for metrics.json.

    An evaluator may also define ``report_section(results, run) -> str``: an HTML fragment for the
    run's report, given its own results and run.json, so a plugin brings its own page section; and
    ``check(channels, days) -> None``: raise ValueError when its options cannot apply to the recipe's
    channels or its windows of ``days`` days, which the engine calls before any training.
    """

    def evaluate(self, context: EvaluationContext) -> dict[str, Any]: ...


@dataclass
class ImportResult:
    """A device export turned into the tidy daily table, with what was missing or skipped."""

    frame: pd.DataFrame  # columns person_id, date (datetime64), then one float column per channel
    notes: list[str] = field(default_factory=list)  # one line each, e.g. "p03: no sleep.json"


@runtime_checkable
class Importer(Protocol):
    """Reads a device export folder (one person, or one sub-folder per person)."""

    description: str

    def __call__(self, path: Path) -> ImportResult: ...
