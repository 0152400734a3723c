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
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel

from synthwear.augment import augmentation
from synthwear.checkpoint import Checkpointing, TrainingState, training_generators
from synthwear.errors import SynthwearError
from synthwear.interfaces import Loss
from synthwear.model import SynthesisModel
from synthwear.recipe import DEVICE_NAMES, TrainingSection, is_device
from synthwear.shard import Shard


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
    refit: dict | None = None  # training.refit: its epochs, windows, seconds and history

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}

    @property
    def epochs_run(self) -> int:
        """Epochs trained in all, the refit's included."""
        return self.epochs + (self.refit["epochs"] if self.refit else 0)


def resolve_device(name: str, what: str = "training.device") -> torch.device:
    """``auto`` means CUDA when present, else CPU; ``what`` names the setting a refusal blames (the
    recipe's ``training.device``, or the device a saved model is loaded onto)."""
    if not is_device(name):
        raise SynthwearError(f"{what} {name!r}: not one of {DEVICE_NAMES}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SynthwearError(f"{what} {name!r}: this torch has no CUDA (use 'auto' or 'cpu')")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise SynthwearError(f"{what} {name!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise SynthwearError(f"{what} {name!r}: MPS is not available here")
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
        total += loss(model.predict(model.generator, inputs, targets), targets, training=False).double() * len(index)
        count += len(index)
    total, count = shard.sum(torch.stack([total, torch.tensor(count, dtype=torch.float64, device=device)]))
    return float(total / count.clamp(min=1))


class WeightAverage:
    """An exponential moving average of the generator's weights over optimizer steps (``training.ema``),
    torch's ``AveragedModel``: the weights validated, kept and released are the average's, while the
    optimizer goes on from the live ones. On a few dozen persons the best epoch comes after 4 to 7
    epochs and one training's fidelity moves with its seed; an average of the last steps is less at
    the mercy of where the last batch happened to leave the weights.

    The decay warms up as min(ema, (1 + n) / (10 + n)) after n averaged steps, so the average follows
    the last ~10% of the steps taken, until it reaches ``ema`` (0.999: after about 9,000 steps)."""

    def __init__(self, generator: torch.nn.Module, decay: float):
        def moved(average: torch.Tensor, live: torch.Tensor, averaged: torch.Tensor) -> torch.Tensor:
            rate = 1 - torch.clamp((1 + averaged) / (10 + averaged), max=decay)
            return average + (live - average) * rate.to(average.dtype)

        self.generator = generator
        self.average = AveragedModel(generator, avg_fn=moved)

    def update(self) -> None:
        self.average.update_parameters(self.generator)

    def weights(self) -> dict[str, torch.Tensor]:
        """The averaged weights, as the generator's ``state_dict`` names them."""
        return self.average.module.state_dict()


@contextmanager
def holding(generator: torch.nn.Module, weights: dict[str, torch.Tensor] | None) -> Iterator[None]:
    """Within: the generator holds ``weights`` (None: its own), then its own again."""
    if weights is None:
        yield
        return
    live = copy.deepcopy(generator.state_dict())
    generator.load_state_dict(weights)
    try:
        yield
    finally:
        generator.load_state_dict(live)


@dataclass
class TrainingPlan:
    """What differs between plain and private training; ``run_training`` is the one loop both use.

    A round is the batches between two validations: an epoch of shuffled windows for plain
    training, the noisy steps between two checkpoints for DP-SGD."""

    network: torch.nn.Module  # what a step calls: the generator, DDP, or Opacus' GradSampleModule
    optimizer: torch.optim.Optimizer
    loss: Loss  # validation scores with it (``training=False``)
    rounds: Callable[[TrainingState], Iterable[Iterable[torch.Tensor]]]  # from where a state left off:
    # each round's batches of windows (B, T, C)
    step_loss: Callable[[list[torch.Tensor], torch.Tensor], torch.Tensor]
    total_steps: int  # what the learning-rate schedule decays over
    patience: int | None = None  # stop after this many rounds without improvement (None: run every round)
    grad_clip: float | None = None  # clip the batch gradient's norm (plain training; DP-SGD clips per person)
    checkpointing: Checkpointing | None = None
    rngs: dict[str, Any] = field(default_factory=dict)  # what a checkpoint keeps besides the tensors
    # JSON state of its own a kind of training checkpoints and restores (DP-SGD: the accountant)
    extra_state: tuple[Callable[[], dict], Callable[[dict], None]] | None = None
    # the starting weights compete with the rounds' (a base model: training may only make it worse
    # for these persons, above all under DP's noise); kept, they are "epoch 0"
    keep_start: bool = False
    # keep the best round's weights (False: the last round's, where the validation persons are trained on)
    keep_best: bool = True
    # training windows moved to new persons before each step (training.augment; plain training only)
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None


def learning_rate_at(step: int, config: TrainingSection, total_steps: int) -> float:
    """Linear warm-up over ``warmup_steps``, then constant or cosine decay to a tenth by ``total_steps``."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    if config.schedule == "constant":
        return config.learning_rate
    progress = min((step - config.warmup_steps) / max(total_steps - config.warmup_steps, 1), 1.0)
    return config.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def parameter_groups(generator: torch.nn.Module, config: TrainingSection) -> list[dict]:
    """The trainable parameters for AdamW. With ``weight_decay_on: matrices`` (nanoGPT's rule) only
    weight matrices decay: pulling embeddings, norm gains and biases towards zero is not a
    regulariser but a distortion (a layer norm's gain at zero switches it off)."""
    named = [(name, p) for name, p in generator.named_parameters() if p.requires_grad]
    if config.weight_decay_on == "all":
        return [{"params": [p for _, p in named], "weight_decay": config.weight_decay}]
    embeddings = {
        f"{module_name}.weight".lstrip(".")
        for module_name, module in generator.named_modules()
        if isinstance(module, torch.nn.Embedding)
    }
    decayed = [p for name, p in named if p.ndim >= 2 and name not in embeddings]
    kept = [p for name, p in named if not (p.ndim >= 2 and name not in embeddings)]
    return [{"params": decayed, "weight_decay": config.weight_decay}, {"params": kept, "weight_decay": 0.0}]


def make_optimizer(generator: torch.nn.Module, config: TrainingSection) -> torch.optim.AdamW:
    return torch.optim.AdamW(parameter_groups(generator, config), lr=config.learning_rate)


def run_training(
    model: SynthesisModel,
    plan: TrainingPlan,
    validation: WindowTokens,
    config: TrainingSection,
    *,
    on_epoch: Callable[[dict], None] | None = None,
    hide_summary: float = 0.0,
) -> tuple[TrainingResult, str | None]:
    """The training loop: steps, and after every round a validation loss that keeps the best
    weights, a checkpoint and a progress record. The model ends holding the best round's weights.
    Also returns why it stopped early (patience), or None where the rounds ran out."""
    device, shard = model.device, Shard.of_process_group()
    state, best_state = TrainingState(), None
    average = WeightAverage(model.generator, config.ema) if config.ema else None
    if plan.checkpointing and plan.checkpointing.resume and plan.checkpointing.path.exists():
        state, best_state = plan.checkpointing.restore(model.generator, plan.optimizer, plan.rngs, average)
        if plan.extra_state:
            plan.extra_state[1](state.extra)
    elif plan.keep_start:
        state.best_loss = validation_loss(model, plan.loss, validation, config.batch_size * 4, shard)
        best_state = copy.deepcopy(model.generator.state_dict())
    started = time.perf_counter() - state.seconds
    stopped = None
    for batches in plan.rounds(state):
        if plan.patience is not None and state.stale >= plan.patience:
            stopped = f"no validation improvement for {plan.patience} epochs"
            break
        train_loss = shard.mean(run_round(model, plan, batches, state, config, hide_summary, average), device)
        judged = average.weights() if average else None  # what is validated, kept and released
        with holding(model.generator, judged):
            val = validation_loss(model, plan.loss, validation, config.batch_size * 4, shard)
        state.epoch += 1
        record = {"epoch": state.epoch, "step": state.steps, "train_loss": train_loss, "validation_loss": val}
        state.history.append(record)
        if val < state.best_loss - 1e-4:
            state.best_loss, state.best_epoch, state.stale = val, state.epoch, 0
            best_state = copy.deepcopy(judged or model.generator.state_dict()) if plan.keep_best else None
        else:
            state.stale += 1
        if plan.checkpointing:
            state.seconds = time.perf_counter() - started
            state.extra = plan.extra_state[0]() if plan.extra_state else {}
            plan.checkpointing.save(model.generator, best_state, plan.optimizer, plan.rngs, state, average)
        if on_epoch:
            on_epoch(record)
    if best_state is not None or average:  # without a best (training.refit's rounds): the last average
        model.generator.load_state_dict(best_state if best_state is not None else average.weights())
    model.generator.eval()
    seconds = time.perf_counter() - started
    result = TrainingResult(
        len(state.history),
        state.best_epoch,
        state.best_loss,
        stopped or "",
        seconds,
        state.seen * shard.world_size / max(seconds, 1e-9),
        state.history,
    )
    return result, stopped


def run_round(
    model: SynthesisModel,
    plan: TrainingPlan,
    batches: Iterable[torch.Tensor],
    state: TrainingState,
    config: TrainingSection,
    hide_summary: float,
    average: WeightAverage | None = None,
) -> float:
    """One round of optimizer steps (each moving ``average``, where there is one); the mean training
    loss of its batches."""
    device = model.device
    plan.network.train()
    running, count = torch.zeros((), device=device), 0  # summed on the device: no host sync per step
    for windows in batches:
        if plan.augment is not None:
            windows = plan.augment(windows)
        inputs, targets = model.training_pair(windows, hide_summary)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.precision == "bfloat16"):
            value = plan.step_loss(model.predict(plan.network, inputs, targets), targets)
        plan.optimizer.zero_grad(set_to_none=True)
        value.backward()
        if plan.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.generator.parameters(), plan.grad_clip)
        for group in plan.optimizer.param_groups:
            group["lr"] = learning_rate_at(state.steps, config, plan.total_steps)
        plan.optimizer.step()
        if average:
            average.update()
        running, count = running + value.detach(), count + 1
        state.steps, state.seen = state.steps + 1, state.seen + len(targets)
    return float(running) / max(count, 1)


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
    keep_start: bool = False,
    refit: WindowTokens | None = None,
) -> TrainingResult:
    """Train ``model.generator`` in place on shuffled batches of windows, with early stopping; it
    ends holding the weights of the best validation epoch. With ``checkpointing`` the state is saved
    after every epoch, and a killed run resumes from it with the same result as a run never killed.
    ``hide_summary``: the share of windows trained without their summary day
    (``SynthesisModel.shifted_inputs``). ``keep_start``: the starting weights compete too (a base).
    ``refit`` (``training.refit``): the training and validation windows together; once early
    stopping has chosen the best epoch, the generator starts again from its starting weights and
    trains that many epochs on them, and ends holding the last.

    Under torchrun every rank must call this with the same windows and seed; DDP starts all ranks
    from rank 0's weights.
    """
    shard = Shard.of_process_group()
    if len(train) < shard.world_size or len(validation) < shard.world_size:
        raise SynthwearError(
            f"{len(train)} training / {len(validation)} validation windows cannot be shared "
            f"among {shard.world_size} processes"
        )
    train, validation = train.to(model.device), validation.to(model.device)
    starting = copy.deepcopy(model.generator.state_dict()) if refit is not None else None
    resumed = checkpointing.saved_extra() if checkpointing and checkpointing.resume else {}
    if "refit" not in resumed:  # not killed while refitting: choose the epochs first
        plan = epoch_plan(model, loss, train, config, seed, checkpointing, config.epochs, keep_start=keep_start)
        result, stopped = run_training(model, plan, validation, config, on_epoch=on_epoch, hide_summary=hide_summary)
        result.stopped = stopped or f"reached {config.epochs} epochs"
        if refit is None:
            return result
        resumed = {"refit": result.to_dict()}
        checkpointing = replace(checkpointing, resume=False) if checkpointing else None  # the refit starts afresh
    first = TrainingResult(**resumed["refit"])
    model.generator.load_state_dict(starting)
    plan = epoch_plan(model, loss, refit.to(model.device), config, seed + 1, checkpointing, first.best_epoch)
    plan.patience, plan.keep_best, plan.extra_state = None, False, (lambda: resumed, lambda extra: None)
    again, _ = run_training(
        model, plan, validation, config, on_epoch=on_epoch and refit_records(on_epoch), hide_summary=hide_summary
    )
    first.refit = {"epochs": again.epochs, "windows": len(refit), "seconds": again.seconds, "history": again.history}
    return first


def epoch_plan(
    model: SynthesisModel,
    loss: Loss,
    train: WindowTokens,
    config: TrainingSection,
    seed: int,
    checkpointing: Checkpointing | None,
    epochs: int,
    *,
    keep_start: bool = False,
) -> TrainingPlan:
    """Plain training's plan: up to ``epochs`` epochs of ``train``'s windows shuffled with ``seed``,
    early stopping after ``config.patience`` epochs without improvement."""
    device, shard = model.device, Shard.of_process_group()
    batch_size = math.ceil(config.batch_size / shard.world_size)  # the recipe's batch is the global batch
    order = torch.Generator().manual_seed(seed)

    def rounds(state: TrainingState) -> Iterator[Iterator[torch.Tensor]]:
        for _ in range(state.epoch, epochs):
            order_now = shard.take(torch.randperm(len(train), generator=order)).to(device)
            yield (train.batch(index) for index in order_now.split(batch_size))

    return TrainingPlan(
        data_parallel(model.generator, shard),
        make_optimizer(model.generator, config),
        loss,
        rounds,
        lambda logits, targets: loss(logits, targets, training=True),
        epochs * math.ceil(len(train) // shard.world_size / batch_size),
        patience=config.patience,
        grad_clip=config.grad_clip,
        checkpointing=checkpointing,
        rngs=training_generators(loss, order=order),
        keep_start=keep_start,
        augment=augmentation(model, train, config.augment),
    )


def refit_records(on_epoch: Callable[[dict], None]) -> Callable[[dict], None]:
    """Progress records of the refit marked as such: its "validation" loss is on persons it trains on."""
    return lambda record: on_epoch({**record, "refit": True})


def data_parallel(generator: torch.nn.Module, shard: Shard) -> torch.nn.Module:
    """The generator itself in one process; under torchrun, DDP around it (gradients averaged over ranks)."""
    if shard.world_size == 1:
        return generator
    device = next(generator.parameters()).device
    return DistributedDataParallel(generator, device_ids=[device] if device.type == "cuda" else None)


def window_tokens(tokens: np.ndarray, starts: np.ndarray, days: int) -> WindowTokens:
    return WindowTokens(torch.from_numpy(tokens), torch.from_numpy(np.asarray(starts, dtype=np.int64)), days)
