"""Multi-task objectives over the per-channel cross-entropies.

Shake-shake (the paper's choice) weights the channels' losses by a random unit vector drawn anew
at every training step, so no single channel's scale dominates the shared layers; evaluation uses
the plain mean so validation losses are comparable across steps. The plain mean is also offered
for training, as the ablation.

Both may smooth training targets over neighbouring bins (``smoothing``, a Gaussian's width in
bins). Bins are ordered values, but plain cross-entropy treats a prediction one bin off as wrong as
one fifty bins off; with small cohorts the model then memorises exact bins instead of learning
levels. Evaluation always scores the hard targets, so validation losses stay likelihoods.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from synthwear.hookspecs import hookimpl
from synthwear.interfaces import MISSING


def channel_losses(
    logits: list[torch.Tensor], targets: torch.Tensor, smoothing: float | Sequence[float] = 0.0
) -> torch.Tensor:
    """(C,) mean cross-entropy per channel over its observed targets (0 for a channel with none).

    With ``smoothing`` > 0 each target is a discretised Gaussian of that width (in bins) centred
    on the observed bin instead of a one-hot vector; a sequence gives each channel its own width.
    """
    widths = [smoothing] * len(logits) if isinstance(smoothing, int | float) else list(smoothing)
    if len(widths) != len(logits):
        raise ValueError(f"loss smoothing: {len(widths)} widths for {len(logits)} channels")
    losses = []
    for c, (channel_logits, width) in enumerate(zip(logits, widths)):
        n_tokens = channel_logits.size(-1)
        target = targets[..., c].reshape(-1)
        observed = target != MISSING
        flat = channel_logits.reshape(-1, n_tokens)
        if width > 0:
            bins = torch.arange(n_tokens, device=flat.device, dtype=flat.dtype)
            soft = torch.softmax(-0.5 * ((bins - target.clamp(min=0)[:, None].to(flat.dtype)) / width) ** 2, dim=-1)
            per_target = -(soft * torch.log_softmax(flat, dim=-1)).sum(dim=-1)
            total = (per_target * observed).sum()
        else:
            total = F.cross_entropy(flat, target, ignore_index=MISSING, reduction="sum")
        losses.append(total / observed.sum().clamp(min=1))
    return torch.stack(losses)


@dataclass
class LossConfig:
    # Width (in bins) of the Gaussian that training targets are spread over; 0 = one-hot. A mapping
    # gives channels their own widths (channels not named: 0). Why per channel: a channel that changes
    # by about one bin a day (resting HR) is widened by smoothing as much as it really varies, one
    # that changes by ten bins a day (sleep, steps) is not.
    smoothing: float | dict[str, float] = 0.0

    def __post_init__(self):
        widths = self.smoothing.values() if isinstance(self.smoothing, dict) else [self.smoothing]
        for width in widths:  # the types are checked by the engine (pydantic) before this runs
            if not (math.isfinite(width) and width >= 0):
                raise ValueError(f"loss smoothing must be numbers >= 0, got {self.smoothing!r}")


class MeanLoss:
    """Plain mean of the channels' losses, in training and evaluation alike."""

    def __init__(self, config: LossConfig = LossConfig()):
        self.config = config
        self.widths: float | list[float] = 0.0 if isinstance(config.smoothing, dict) else config.smoothing

    def bind(self, channels: list[str]) -> None:
        """Called by the engine with the recipe's channels before training: per-channel widths by
        name. A name that is not a channel is refused, as in per-channel temperatures: ``stepz``
        silently leaving steps unsmoothed is a typo nobody would find."""
        if isinstance(self.config.smoothing, dict):
            unknown = sorted(set(self.config.smoothing) - set(channels))
            if unknown:
                raise ValueError(
                    f"smoothing names {unknown[0]!r}, which is not a channel ({', '.join(channels)}); "
                    "name channels of the recipe only"
                )
            self.widths = [float(self.config.smoothing.get(channel, 0.0)) for channel in channels]

    def __call__(self, logits: list[torch.Tensor], targets: torch.Tensor, *, training: bool) -> torch.Tensor:
        return channel_losses(logits, targets, self.widths if training else 0.0).mean()


class ShakeShakeLoss(MeanLoss):
    """``L = Σ αᵢ Lᵢ`` with α uniform on the positive part of the unit sphere, drawn per step."""

    def __init__(self, config: LossConfig = LossConfig()):
        super().__init__(config)
        # its own generator, seeded from the run's seed, so α draws do not shift the model's randomness
        self.generator = torch.Generator().manual_seed(int(torch.randint(2**62, ())))
        self.last_alpha: torch.Tensor | None = None  # kept for inspection and tests

    def draw_alpha(self, n_channels: int) -> torch.Tensor:
        alpha = torch.randn(n_channels, generator=self.generator).abs()
        return alpha / alpha.norm()

    def __call__(self, logits: list[torch.Tensor], targets: torch.Tensor, *, training: bool) -> torch.Tensor:
        if not training:
            return super().__call__(logits, targets, training=False)
        losses = channel_losses(logits, targets, self.widths)
        self.last_alpha = self.draw_alpha(len(losses))
        return (self.last_alpha.to(losses.device) * losses).sum()


@hookimpl
def register_losses(register):
    register("shake_shake", ShakeShakeLoss)
    register("mean", MeanLoss)
