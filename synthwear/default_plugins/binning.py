"""Evenly spaced bins over a public range: the paper's discretisation of each channel.

Edges come from the recipe's declared physiological range, never from the data, so the encoder
itself reveals nothing about participants.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from synthwear.hookspecs import hookimpl
from synthwear.interfaces import MISSING

# More bins than any wearable's resolution needs (the paper tried 25 to 200); every training batch holds
# logits of this size per day and channel, so a billion is memory no machine has, refused up front.
MAX_BINS = 10_000


@dataclass
class BinningConfig:
    bins: int = 100  # the paper's 100 evenly spaced bins per channel
    # How a bin becomes a value again. "uniform" draws uniformly within the bin, so synthetic values
    # are continuous and their histogram is not 100 spikes; "centre" returns the bin centre (the
    # value with the smallest worst-case error, half a bin width).
    decode: Literal["uniform", "centre"] = "uniform"

    def __post_init__(self) -> None:  # checked with the recipe, before any data is read
        if not 2 <= self.bins <= MAX_BINS:
            raise ValueError(f"binning needs 2 to {MAX_BINS:,} bins, got {self.bins:,}")


class BinningEncoder:
    def __init__(self, low: float, high: float, config: BinningConfig = BinningConfig()):
        if config.decode not in ("uniform", "centre"):
            raise ValueError(f"binning decode must be 'uniform' or 'centre', got {config.decode!r}")
        self.low, self.high, self.config = float(low), float(high), config
        self.n_tokens = config.bins
        self.width = (self.high - self.low) / config.bins

    def encode(self, values: np.ndarray) -> tuple[np.ndarray, int]:
        values = np.asarray(values, dtype=np.float64)
        observed = ~np.isnan(values)
        clipped = int(((values < self.low) | (values > self.high))[observed].sum())
        ids = np.floor((np.clip(values, self.low, self.high) - self.low) / self.width)
        ids = np.clip(np.nan_to_num(ids, nan=MISSING), 0, self.n_tokens - 1).astype(np.int64)
        return np.where(observed, ids, MISSING), clipped

    def decode(self, tokens: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        tokens = np.asarray(tokens)
        offset = rng.random(tokens.shape) if self.config.decode == "uniform" else 0.5
        values = self.low + (tokens + offset) * self.width
        return np.where(tokens == MISSING, np.nan, values)

    def representatives(self) -> np.ndarray:
        return self.low + (np.arange(self.n_tokens) + 0.5) * self.width

    def describe(self) -> dict[str, Any]:
        return {"name": "binning", "bins": self.config.bins, "decode": self.config.decode}


@hookimpl
def register_encoders(register):
    register("binning", BinningEncoder)
