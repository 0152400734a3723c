"""Persons between the real ones: training windows moved to another level, for small cohorts.

With a few dozen training persons the transformer learns their levels by heart within a few epochs
(early stopping keeps epoch 3 or 4 on LifeSnaps) and stops before it has learned how a person's days
move around their level. Moving a window's days, and its summary days, by one random offset per
channel shows it persons between the real ones, which lets it train longer on what persons share.
An offset keeps everything within the window as it was (the order of the days, their changes, the
channels' gaps); optionally the days' deviations from the level are scaled too, so that calm and
volatile versions of a person appear. The offsets' size is a share of the spread of the training
windows' levels, measured on them, so the same setting means the same on any cohort and channel;
it is a statistic of the training persons, which is why augmentation is not offered with DP-SGD.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from synthwear.interfaces import MISSING
from synthwear.model import SynthesisModel
from synthwear.recipe import AugmentSection
from synthwear.summary import spread_id, spread_of_id

if TYPE_CHECKING:
    from synthwear.train import WindowTokens

LEVEL_SAMPLE = 4096  # training windows whose levels measure the offsets' spread


@dataclass
class Augmentation:
    """Moves a share of a batch's windows (B, T, columns as ``WindowTokens``) to new levels."""

    shift_sd: torch.Tensor  # (C,) the offsets' standard deviation per channel, in bins
    scale_sd: float  # the standard deviation of the log factor deviations from the level are scaled by
    share: float  # of the windows moved
    n_bins: list[int]  # per channel
    day_columns: int  # predicted columns and covariates; the person's summary days follow (if given)
    n_scored: int  # predicted columns per day (with gaps, the channels' "observed" twins follow them)
    summary_days: int

    def __call__(self, windows: torch.Tensor) -> torch.Tensor:
        n, device = len(self.n_bins), windows.device
        chosen = torch.rand(len(windows), 1, device=device) < self.share
        offsets = torch.round(torch.randn(len(windows), n, device=device) * self.shift_sd.to(device)) * chosen
        factors = torch.where(chosen, torch.exp(torch.randn(len(windows), n, device=device) * self.scale_sd), 1.0)
        windows = windows.clone()
        days, given = windows[..., :n], self.given_summary(windows)
        level = given[:, 0, :n].float() if given is not None else window_level(days)
        level = torch.where(level < 0, 0.0, level)  # a channel never observed: nothing to move
        bins = torch.tensor(self.n_bins, device=device)
        moved = level[:, None] + factors[:, None] * (days - level[:, None]) + offsets[:, None]
        windows[..., :n] = torch.where(is_bin(days, bins), clamp_bins(moved, bins), days)
        if given is not None:
            windows[..., self.day_columns :] = self.moved_summary(given, offsets, factors, bins).flatten(1)[:, None]
        return windows

    def given_summary(self, windows: torch.Tensor) -> torch.Tensor | None:
        """The person's summary days every day carries (``summary_of: person``), (B, S, n_scored)."""
        if windows.size(-1) == self.day_columns:
            return None
        return windows[:, 0, self.day_columns :].reshape(len(windows), self.summary_days, self.n_scored)

    def moved_summary(
        self, given: torch.Tensor, offsets: torch.Tensor, factors: torch.Tensor, bins: torch.Tensor
    ) -> torch.Tensor:
        """The level moves with the days; the spread (a second summary day) scales with them."""
        n, given = len(self.n_bins), given.clone()
        level = given[:, 0, :n]
        given[:, 0, :n] = torch.where(is_bin(level, bins), clamp_bins(level + offsets, bins), level)
        if self.summary_days > 1:
            spread = given[:, 1, :n]
            scaled = [
                spread_id(torch.expm1(spread_of_id(spread[:, c], b)) * factors[:, c], b)
                for c, b in enumerate(self.n_bins)
            ]
            given[:, 1, :n] = torch.where(spread != MISSING, torch.stack(scaled, dim=1), spread)
        return given


def is_bin(ids: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    return (ids >= 0) & (ids < bins)


def clamp_bins(values: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    return torch.round(values).long().clamp(min=0).minimum(bins - 1)


def window_level(days: torch.Tensor) -> torch.Tensor:
    """(B, T, C) ids -> (B, C) each window's mean observed bin; -1 where a channel has none."""
    observed = days != MISSING
    total = (days.clamp(min=0) * observed).sum(dim=1).float()
    count = observed.sum(dim=1)
    return torch.where(count > 0, total / count.clamp(min=1), -1.0)


def level_spread(windows: torch.Tensor, n: int) -> torch.Tensor:
    """(B, T, columns) training windows -> (n,) the standard deviation of their levels per channel."""
    levels = window_level(windows[..., :n])
    return torch.stack([levels[levels[:, c] >= 0, c].std().nan_to_num(0.0) for c in range(n)])


def augmentation(model: SynthesisModel, train: WindowTokens, config: AugmentSection) -> Augmentation | None:
    """The recipe's augmentation for ``model``, its offsets sized on up to ``LEVEL_SAMPLE`` of the
    ``train`` windows; None where ``training.augment`` is off."""
    if not config.active:
        return None
    n = len(model.channels)
    sample = train.batch(spread_out(len(train), LEVEL_SAMPLE).to(train.starts.device))
    return Augmentation(
        shift_sd=config.shift * level_spread(sample, n),
        scale_sd=config.scale,
        share=config.share,
        n_bins=list(model.spec.vocab_sizes[:n]),
        day_columns=model.n_scored + len(model.covariate_sizes),
        n_scored=model.n_scored,
        summary_days=model.summary,
    )


def spread_out(n: int, most: int) -> torch.Tensor:
    """At most ``most`` of the indices 0..n-1, evenly spaced."""
    return torch.linspace(0, n - 1, min(n, most)).round().long()
