"""The training loop: AdamW, early stopping on the validation loss, explicit seeds, no globals.

Windows are start rows into one per-day token tensor, so a batch is a single gather and an epoch
never materialises the overlapping windows.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from synthwear.interfaces import Loss
from synthwear.model import SynthesisModel
from synthwear.recipe import TrainingSection


@dataclass
class WindowTokens:
    """Windows of ``days`` days as start rows into a (D, C) token tensor (MISSING = -1)."""

    tokens: torch.Tensor
    starts: torch.Tensor
    days: int

    def __len__(self) -> int:
        return len(self.starts)

    def batch(self, index: torch.Tensor) -> torch.Tensor:
        rows = self.starts[index][:, None] + torch.arange(self.days, device=self.tokens.device)
        return self.tokens[rows]  # (B, T, C)

    def to(self, device: torch.device) -> WindowTokens:
        return WindowTokens(self.tokens.to(device), self.starts.to(device), self.days)


@dataclass
class TrainingResult:
    epochs: int
    best_epoch: int
    best_validation_loss: float
    stopped: str  # why training ended
    seconds: float
    windows_per_second: float
    history: list[dict] = field(default_factory=list)  # per epoch: train and validation loss

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


def resolve_device(name: str) -> torch.device:
    """``auto`` means CUDA when present, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@torch.no_grad()
def validation_loss(model: SynthesisModel, loss: Loss, windows: WindowTokens, batch_size: int) -> float:
    """The evaluation-mode loss (plain mean over channels), averaged over windows."""
    model.generator.eval()
    total, count = 0.0, 0
    for index in torch.arange(len(windows), device=windows.tokens.device).split(batch_size):
        targets = windows.batch(index)
        total += float(loss(model.generator(model.shifted_inputs(targets)), targets, training=False)) * len(index)
        count += len(index)
    return total / max(count, 1)


def train_model(
    model: SynthesisModel, loss: Loss, train: WindowTokens, validation: WindowTokens,
    config: TrainingSection, *, seed: int, on_epoch: Callable[[dict], None] | None = None,
) -> TrainingResult:
    """Train ``model.generator`` in place; it ends holding the weights of the best validation epoch."""
    device = model.device
    train, validation = train.to(device), validation.to(device)
    order_gen = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.generator.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    best_loss, best_epoch, best_state, stale = float("inf"), 0, None, 0
    history: list[dict] = []
    stopped = f"reached {config.epochs} epochs"
    started, seen = time.perf_counter(), 0
    for epoch in range(1, config.epochs + 1):
        model.generator.train()
        running, batches = 0.0, 0
        for index in torch.randperm(len(train), generator=order_gen).to(device).split(config.batch_size):
            targets = train.batch(index)
            value = loss(model.generator(model.shifted_inputs(targets)), targets, training=True)
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            optimizer.step()
            running, batches, seen = running + value.item(), batches + 1, seen + len(index)
        val = validation_loss(model, loss, validation, config.batch_size * 4)
        record = {"epoch": epoch, "train_loss": running / max(batches, 1), "validation_loss": val}
        history.append(record)
        if on_epoch:
            on_epoch(record)
        if val < best_loss - 1e-4:
            best_loss, best_epoch, stale = val, epoch, 0
            best_state = copy.deepcopy(model.generator.state_dict())
        else:
            stale += 1
            if stale >= config.patience:
                stopped = f"no validation improvement for {config.patience} epochs"
                break
    if best_state is not None:
        model.generator.load_state_dict(best_state)
    model.generator.eval()
    seconds = time.perf_counter() - started
    return TrainingResult(len(history), best_epoch, best_loss, stopped, seconds, seen / max(seconds, 1e-9), history)


def window_tokens(tokens: np.ndarray, starts: np.ndarray, days: int) -> WindowTokens:
    return WindowTokens(torch.from_numpy(tokens), torch.from_numpy(np.asarray(starts, dtype=np.int64)), days)
