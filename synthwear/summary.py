"""Summary days: what a sequence says about its person before its first day, drawn first when sampling.

The level (each channel's mean bin) fixes where a synthetic person's days lie; the spread (each
channel's mean absolute day-to-day change) how much they move. Real persons keep both: the
volatility of a window's first half predicts its second's (steps: correlation 0.37 between the
halves' standard deviations on LifeSnaps), which days drawn around one level alone do not.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from synthwear.interfaces import MISSING


def spread_id(changes: torch.Tensor, n_bins: int) -> torch.Tensor:
    """Mean absolute day-to-day changes ``d`` (in bins, >= 0) -> ids 0..n_bins-1 on a log scale,
    round(n_bins * log1p(d) / log1p(n_bins)): day-to-day change is a ratio scale (calm persons differ
    by fractions of a bin, volatile ones by many), and the ids need no data to be defined, so they
    reveal nothing that a recipe's ranges do not."""
    return (n_bins * torch.log1p(changes) / math.log1p(n_bins)).round().clamp(max=n_bins - 1).long()


def spread_of_id(ids: torch.Tensor, n_bins: int) -> torch.Tensor:
    """``spread_id``'s ids -> log1p(d), the log-scale spread a generator can scale a day's kernels by."""
    return ids.float() * math.log1p(n_bins) / n_bins


def window_summary(tokens: torch.Tensor, days: int, n_bins: list[int]) -> torch.Tensor:
    """Windows (B, T, C) of ids (MISSING where unknown) -> (B, days, C) their summary days: the mean
    bin per channel, then (``days`` 2) ``spread_id`` of the mean absolute change between consecutive
    observed days; MISSING where a channel has no observed day (no observed pair). ``n_bins``: each
    channel's ids (for the gaps' "observed" twins, 0 and OBSERVED, the spread is how often they flip)."""
    observed = tokens != MISSING
    mean = (tokens.clamp(min=0) * observed).sum(dim=1) / observed.sum(dim=1).clamp(min=1)
    summary = [torch.where(observed.any(dim=1), mean.round().long(), MISSING)]
    if days > 1:
        pairs = observed[:, 1:] & observed[:, :-1]
        change = ((tokens[:, 1:] - tokens[:, :-1]).abs() * pairs).sum(dim=1) / pairs.sum(dim=1).clamp(min=1)
        summary.append(spreads(change, pairs.any(dim=1), n_bins))
    return torch.stack(summary, dim=1)


def spreads(change: torch.Tensor, known: torch.Tensor, n_bins: list[int]) -> torch.Tensor:
    """(B, C) mean absolute changes and whether each is known -> (B, C) ``spread_id``s or MISSING."""
    ids = torch.stack([spread_id(change[:, c], n) for c, n in enumerate(n_bins)], dim=-1)
    return torch.where(known, ids, MISSING)


def person_summary(tokens: np.ndarray, offsets: np.ndarray, days: int, n_bins: list[int]) -> np.ndarray:
    """Rows (D, C) of ``day_tokens``' predicted columns, person p's rows ``offsets[p]:offsets[p+1]``
    (at least one each) -> (D, days * C) every row's person's summary days, as ``window_summary`` but
    over all the person's days: the summary of ``windows.summary_of: person``."""
    observed = tokens != MISSING
    starts = offsets[:-1]
    sums = np.add.reduceat(np.where(observed, tokens, 0), starts, axis=0)
    counts = np.add.reduceat(observed.astype(np.int64), starts, axis=0)
    summary = [np.where(counts > 0, np.rint(sums / np.maximum(counts, 1)), MISSING).astype(np.int64)]
    if days > 1:  # row r > 0 holds the pair (r - 1, r); a person's first row holds none
        pairs = np.zeros_like(observed)
        pairs[1:] = observed[1:] & observed[:-1]
        pairs[starts] = False
        change = np.zeros(tokens.shape, dtype=np.float64)
        change[1:] = np.abs(np.diff(tokens, axis=0))
        totals = np.add.reduceat(np.where(pairs, change, 0.0), starts, axis=0)
        n_pairs = np.add.reduceat(pairs.astype(np.int64), starts, axis=0)
        mean = torch.from_numpy(totals / np.maximum(n_pairs, 1))
        summary.append(spreads(mean, torch.from_numpy(n_pairs > 0), n_bins).numpy())
    return np.repeat(np.concatenate(summary, axis=1), np.diff(offsets), axis=0)
