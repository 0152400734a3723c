"""Which generator parameters DP-SGD can train.

Opacus computes per-sample gradients from each layer's input, which must carry the batch in its
first dimension. A layer fed a batch-free input (the transformer's position embedding takes the
day indices 0..T-1, shared by every window) gets a gradient Opacus would mis-split across windows;
if the batch happened to have T windows, nothing would fail and the clipping would be wrong.
Such parameters are frozen at their (data-independent) initial values instead.
"""

from __future__ import annotations

import torch
from opacus import GradSampleModule

from synthwear.model import SynthesisModel


def freeze_unbatched_parameters(model: SynthesisModel) -> list[str]:
    """Freeze, and return the names of, parameters without a well-formed per-sample gradient.

    Found with one probe pass on an all-zero batch whose size differs from the window length, so no
    private data is touched and a mis-shaped per-sample gradient cannot pass unnoticed.
    """
    days, n_channels = model.window_days, len(model.spec.vocab_sizes)
    probe_batch = model.spec.max_days + 1
    windows = torch.zeros(probe_batch, days, n_channels, dtype=torch.long, device=model.device)
    probe = GradSampleModule(model.generator, batch_first=True, loss_reduction="sum")
    try:  # only what the loss sees: a covariate's head (never scored) stays frozen
        sum(logits.sum() for logits in model.predict(probe, *model.training_pair(windows))).backward()
        frozen = [
            name
            for name, p in model.generator.named_parameters()
            if p.requires_grad and (getattr(p, "grad_sample", None) is None or p.grad_sample.shape[0] != probe_batch)
        ]
    finally:
        probe.cleanup()
        model.generator.zero_grad(set_to_none=True)
    for name, parameter in model.generator.named_parameters():
        if name in frozen:
            parameter.requires_grad_(False)
    return frozen
