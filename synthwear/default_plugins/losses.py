"""Multi-task objectives over the per-channel cross-entropies.

Shake-shake (the paper's choice) weights the channels' losses by a random unit vector drawn anew
at every training step, so no single channel's scale dominates the shared layers; evaluation uses
the plain mean so validation losses are comparable across steps. The plain mean is also offered
for training, as the ablation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from synthwear.hookspecs import hookimpl
from synthwear.interfaces import MISSING


def channel_losses(logits: list[torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
    """(C,) mean cross-entropy per channel over its observed targets (0 for a channel with none)."""
    losses = []
    for c, channel_logits in enumerate(logits):
        target = targets[..., c].reshape(-1)
        total = F.cross_entropy(channel_logits.reshape(-1, channel_logits.size(-1)), target,
                                ignore_index=MISSING, reduction="sum")
        losses.append(total / (target != MISSING).sum().clamp(min=1))
    return torch.stack(losses)


class MeanLoss:
    """Plain mean of the channels' losses, in training and evaluation alike."""

    def __call__(self, logits: list[torch.Tensor], targets: torch.Tensor, *, training: bool) -> torch.Tensor:
        return channel_losses(logits, targets).mean()


class ShakeShakeLoss:
    """``L = Σ αᵢ Lᵢ`` with α uniform on the positive part of the unit sphere, drawn per step."""

    def __init__(self):
        # its own generator, seeded from the run's seed, so α draws do not shift the model's randomness
        self.generator = torch.Generator().manual_seed(int(torch.randint(2**62, ())))
        self.last_alpha: torch.Tensor | None = None  # kept for inspection and tests

    def draw_alpha(self, n_channels: int) -> torch.Tensor:
        alpha = torch.randn(n_channels, generator=self.generator).abs()
        return alpha / alpha.norm()

    def __call__(self, logits: list[torch.Tensor], targets: torch.Tensor, *, training: bool) -> torch.Tensor:
        losses = channel_losses(logits, targets)
        if not training:
            return losses.mean()
        self.last_alpha = self.draw_alpha(len(losses))
        return (self.last_alpha.to(losses.device) * losses).sum()


@hookimpl
def register_losses(register):
    register("shake_shake", ShakeShakeLoss)
    register("mean", MeanLoss)
