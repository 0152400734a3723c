"""The training loop: AdamW, early stopping on the validation loss, explicit seeds, no globals.

Windows are start rows into one per-day token tensor, so a batch is a single gather and an epoch
never materialises the overlapping windows.

Under ``torchrun`` (an initialised ``torch.distributed`` process group) the same loop runs with
DistributedDataParallel: every rank draws the same seeded permutation of the window starts and
takes its own disjoint slice, the recipe's ``batch_size`` stays the global batch, and the
validation loss is summed over all ranks so that early stopping decides identically everywhere.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from synthwear.checkpoint import Checkpointing, TrainingState, training_generators
from synthwear.errors import SynthwearError
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


@dataclass(frozen=True)
class Shard:
    """This process's place among the training processes: rank 0 of 1 unless run under torchrun."""

    rank: int = 0
    world_size: int = 1

    @classmethod
    def of_process_group(cls) -> Shard:
        """The rank and size of the initialised ``torch.distributed`` group, if there is one."""
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()

    def take(self, order: torch.Tensor) -> torch.Tensor:
        """This rank's disjoint slice of an order every rank drew identically; all slices have the
        same length (the last ``len % world_size`` are dropped) so that the ranks step together."""
        per_rank = len(order) // self.world_size
        return order[self.rank * per_rank : (self.rank + 1) * per_rank]

    def part(self, n: int, device: torch.device) -> torch.Tensor:
        """This rank's contiguous share of rows 0..n-1 for scoring: nothing dropped, sizes differ by at most one."""
        return torch.arange(n, device=device).tensor_split(self.world_size)[self.rank]

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """Element-wise sum over all ranks (the values themselves in a single process)."""
        if self.world_size > 1:
            values = values.clone()
            dist.all_reduce(values)
        return values

    def mean(self, value: float, device: torch.device) -> float:
        """The mean over all ranks of one number each holds; ``device`` is where the backend reduces
        (the rank's GPU under nccl)."""
        return float(self.sum(torch.tensor([value], dtype=torch.float64, device=device))[0]) / self.world_size


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
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SynthwearError(f"training.device {name!r}: this torch has no CUDA (use 'auto' or 'cpu')")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise SynthwearError(f"training.device {name!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise SynthwearError(f"training.device {name!r}: MPS is not available here")
    return device


@torch.no_grad()
def validation_loss(
    model: SynthesisModel, loss: Loss, windows: WindowTokens, batch_size: int, shard: Shard = Shard()
) -> float:
    """The evaluation-mode loss (plain mean over channels), averaged over windows; with several
    ranks each scores its slice and the sums are combined, so every rank returns the same number."""
    model.generator.eval()
    device = windows.tokens.device
    total, count = torch.zeros((), dtype=torch.float64, device=device), 0
    for index in shard.part(len(windows), device).split(batch_size):
        inputs, targets = model.training_pair(windows.batch(index))  # a summary day is seen: the joint likelihood
        total += loss(model.generator(inputs), targets, training=False).double() * len(index)
        count += len(index)
    total, count = shard.sum(torch.stack([total, torch.tensor(count, dtype=torch.float64, device=device)]))
    return float(total / count.clamp(min=1))


def train_model(
    model: SynthesisModel,
    loss: Loss,
    train: WindowTokens,
    validation: WindowTokens,
    config: TrainingSection,
    *,
    seed: int,
    on_epoch: Callable[[dict], None] | None = None,
    checkpointing: Checkpointing | None = None,
    hide_summary: float = 0.0,
) -> TrainingResult:
    """Train ``model.generator`` in place; it ends holding the weights of the best validation epoch.
    With ``checkpointing`` the state is saved after every epoch, and a killed run resumes from it
    with the same result as a run never killed. ``hide_summary``: the share of windows trained
    without their summary day (``SynthesisModel.shifted_inputs``).

    Under torchrun every rank must call this with the same windows and seed; DDP starts all ranks
    from rank 0's weights.
    """
    device = model.device
    shard = Shard.of_process_group()
    if len(train) < shard.world_size or len(validation) < shard.world_size:
        raise SynthwearError(
            f"{len(train)} training / {len(validation)} validation windows cannot be shared "
            f"among {shard.world_size} processes"
        )
    train, validation = train.to(device), validation.to(device)
    network = (
        model.generator
        if shard.world_size == 1
        else DistributedDataParallel(model.generator, device_ids=[device] if device.type == "cuda" else None)
    )
    batch_size = math.ceil(config.batch_size / shard.world_size)  # the recipe's batch is the global batch
    order_gen = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(
        model.generator.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    rngs = training_generators(order_gen, loss)
    state, best_state = TrainingState(), None
    if checkpointing and checkpointing.resume and checkpointing.path.exists():
        state, best_state = checkpointing.restore(model.generator, optimizer, rngs)
    started = time.perf_counter() - state.seconds
    for epoch in range(state.epoch + 1, config.epochs + 1):
        if state.stale >= config.patience:
            break
        model.generator.train()
        running, batches = torch.zeros((), device=device), 0  # summed on the device: no host sync per step
        for index in shard.take(torch.randperm(len(train), generator=order_gen)).to(device).split(batch_size):
            inputs, targets = model.training_pair(train.batch(index), hide_summary)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.precision == "bfloat16"):
                value = loss(network(inputs), targets, training=True)
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            optimizer.step()
            running, batches, state.seen = running + value.detach(), batches + 1, state.seen + len(index)
        train_loss = shard.mean(float(running) / max(batches, 1), device)
        val = validation_loss(model, loss, validation, batch_size * 4, shard)
        record = {"epoch": epoch, "train_loss": train_loss, "validation_loss": val}
        state.history.append(record)
        state.epoch = epoch
        if val < state.best_loss - 1e-4:
            state.best_loss, state.best_epoch, state.stale = val, epoch, 0
            best_state = copy.deepcopy(model.generator.state_dict())
        else:
            state.stale += 1
        if checkpointing:
            state.seconds = time.perf_counter() - started
            checkpointing.save(model.generator, best_state, optimizer, rngs, state)
        if on_epoch:
            on_epoch(record)
    stopped = (
        f"no validation improvement for {config.patience} epochs"
        if state.stale >= config.patience
        else f"reached {config.epochs} epochs"
    )
    if best_state is not None:
        model.generator.load_state_dict(best_state)
    model.generator.eval()
    seconds = time.perf_counter() - started
    windows_per_second = state.seen * shard.world_size / max(seconds, 1e-9)
    return TrainingResult(
        len(state.history), state.best_epoch, state.best_loss, stopped, seconds, windows_per_second, state.history
    )


def window_tokens(tokens: np.ndarray, starts: np.ndarray, days: int) -> WindowTokens:
    return WindowTokens(torch.from_numpy(tokens), torch.from_numpy(np.asarray(starts, dtype=np.int64)), days)
