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

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from synthwear.hookspecs import hookimpl
from synthwear.interfaces import MISSING


def channel_losses(logits: list[torch.Tensor], targets: torch.Tensor, smoothing: float = 0.0) -> torch.Tensor:
    """(C,) mean cross-entropy per channel over its observed targets (0 for a channel with none).

    With ``smoothing`` > 0 each target is a discretised Gaussian of that width (in bins) centred
    on the observed bin instead of a one-hot vector.
    """
    losses = []
    for c, channel_logits in enumerate(logits):
        n_tokens = channel_logits.size(-1)
        target = targets[..., c].reshape(-1)
        observed = target != MISSING
        flat = channel_logits.reshape(-1, n_tokens)
        if smoothing > 0:
            bins = torch.arange(n_tokens, device=flat.device, dtype=flat.dtype)
            soft = torch.softmax(-0.5 * ((bins - target.clamp(min=0)[:, None].to(flat.dtype)) / smoothing) ** 2, dim=-1)
            per_target = -(soft * torch.log_softmax(flat, dim=-1)).sum(dim=-1)
            total = (per_target * observed).sum()
        else:
            total = F.cross_entropy(flat, target, ignore_index=MISSING, reduction="sum")
        losses.append(total / observed.sum().clamp(min=1))
    return torch.stack(losses)


@dataclass
class LossConfig:
    smoothing: float = 0.0  # width (in bins) of the Gaussian that training targets are spread over; 0 = one-hot


class MeanLoss:
    """Plain mean of the channels' losses, in training and evaluation alike."""

    def __init__(self, config: LossConfig = LossConfig()):
        if config.smoothing < 0:
            raise ValueError(f"loss smoothing must be >= 0, got {config.smoothing}")
        self.config = config

    def __call__(self, logits: list[torch.Tensor], targets: torch.Tensor, *, training: bool) -> torch.Tensor:
        return channel_losses(logits, targets, self.config.smoothing if training else 0.0).mean()


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
        losses = channel_losses(logits, targets, self.config.smoothing)
        self.last_alpha = self.draw_alpha(len(losses))
        return (self.last_alpha.to(losses.device) * losses).sum()


@hookimpl
def register_losses(register):
    register("shake_shake", ShakeShakeLoss)
    register("mean", MeanLoss)
