"""``train_private``: ``train_model``'s contract, trained with person-level DP-SGD.

What differs from non-private training, and why:
- a step's batch is one window from each Poisson-sampled person (``sampling``), each window's
  gradient is clipped to ``max_grad_norm`` and Gaussian noise is added (Opacus' DPOptimizer);
- the loss is computed per window and averaged (``loss_reduction="mean"``): the engine's losses
  normalise by the batch's count of observed days, which would let one person's missing days
  rescale another person's gradient and break the per-person sensitivity;
- training runs exactly the ``steps`` the noise was calibrated for, so the budget is spent exactly
  (Opacus itself would happily keep going past the target);
- validation persons, disjoint from training persons, choose among ``checkpoints`` evenly spaced
  checkpoints; choosing is post-processing of the noisy iterates, so the training persons'
  guarantee holds. The validation persons are not covered: the choice reveals at most
  log2(checkpoints) bits about them.

Under torchrun this is Opacus' distributed path: the generator is wrapped in its
DifferentiallyPrivateDistributedDataParallel, so ``make_private`` hands back a
DistributedDPOptimizer that clips on every rank, adds the noise on rank 0 only and averages the
noisy sums. The persons are dealt out among the ranks (``sharded_person_loader``); the guarantee
and its accounting are those of one process.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch
from opacus import PrivacyEngine
from opacus.distributed import DifferentiallyPrivateDistributedDataParallel
from torch.utils.data import DataLoader

from synthwear.checkpoint import Checkpointing, training_generators
from synthwear.errors import SynthwearError
from synthwear.interfaces import Loss
from synthwear.model import SynthesisModel
from synthwear.privacy.accounting import PrivacyAccounting, calibrate_noise, resolve_delta
from synthwear.privacy.compatibility import freeze_unbatched_parameters
from synthwear.privacy.sampling import PersonWindows, person_loader, sharded_person_loader
from synthwear.recipe import PrivacySection, TrainingSection
from synthwear.shard import Shard
from synthwear.train import TrainingPlan, TrainingResult, WindowTokens, make_optimizer, run_training


def per_window_loss(loss: Loss, logits: list[torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
    """Mean over windows of the loss of each window alone, so no window's gradient depends on another's.

    A shake-shake loss draws its channel weights per window here rather than per batch; the weights
    are data-independent noise either way.
    """
    if len(targets) == 0:  # a Poisson draw of no persons: still a step, with a zero gradient plus noise
        return sum(channel.sum() for channel in logits) * 0.0
    return torch.stack(
        [
            loss([channel[i : i + 1] for channel in logits], targets[i : i + 1], training=True)
            for i in range(len(targets))
        ]
    ).mean()


STREAMS = ("persons", "windows", "noise", "loader")


def stream(seed: int, purpose: str, rank: int = 0, device: torch.device | str = "cpu") -> torch.Generator:
    """An independent random stream per purpose and rank, all from the recipe's seed (numpy's
    SeedSequence): two generators seeded alike would draw the same numbers for different jobs."""
    entropy = np.random.SeedSequence([seed, STREAMS.index(purpose), rank]).generate_state(1, np.uint64)[0]
    return torch.Generator(device=device).manual_seed(int(entropy))


@contextmanager
def frozen_for_dp(model: SynthesisModel) -> Iterator[list[str]]:
    """The parameters Opacus cannot give per-sample gradients frozen for the block (their names
    yielded), and trainable again after it for whoever holds the model next."""
    frozen = freeze_unbatched_parameters(model)
    try:
        yield frozen
    finally:
        for name, parameter in model.generator.named_parameters():
            if name in frozen:
                parameter.requires_grad_(True)


def checkpoint_rounds(loader: DataLoader, privacy: PrivacySection, done: int = 0) -> Iterator[Iterator[torch.Tensor]]:
    """The ``steps`` noisy steps cut at the ``checkpoints`` evenly spaced steps: exactly the steps
    the noise was calibrated for, so the budget is spent exactly (Opacus itself would keep going).
    ``done``: steps a resumed run already took."""
    draws = itertools.chain.from_iterable(itertools.repeat(loader))  # the loader again and again
    ends = sorted({round(privacy.steps * (i + 1) / privacy.checkpoints) for i in range(privacy.checkpoints)})
    ends = [end for end in ends if end > done]
    for start, end in zip([done, *ends], ends):
        yield itertools.islice(draws, end - start)


def make_private(
    model: SynthesisModel,
    dataset: PersonWindows,
    config: TrainingSection,
    privacy: PrivacySection,
    noise_multiplier: float,
    shard: Shard,
    seed: int,
) -> tuple[PrivacyEngine, torch.nn.Module, torch.optim.Optimizer, DataLoader]:
    """Opacus' engine around the generator's trainable parameters, an AdamW optimizer and a person
    loader: in one process, or as this rank of torchrun's (Opacus' distributed path)."""
    optimizer = make_optimizer(model.generator, config)
    engine = PrivacyEngine(accountant=privacy.accountant)
    sampling = stream(seed, "persons", shard.rank)
    if shard.world_size > 1:  # the loader draws persons itself: Opacus' distributed sampler would skip empty draws
        network = DifferentiallyPrivateDistributedDataParallel(model.generator)
        loader = sharded_person_loader(dataset, privacy.sample_rate, shard, sampling)
    else:
        network, loader = model.generator, person_loader(dataset, privacy.sample_rate, sampling)
    module, optimizer, loader = engine.make_private(
        module=network,
        optimizer=optimizer,
        data_loader=loader,
        poisson_sampling=shard.world_size == 1,
        noise_multiplier=noise_multiplier,
        max_grad_norm=privacy.max_grad_norm,
        loss_reduction="mean",
        grad_sample_mode="hooks",
        noise_generator=stream(seed, "noise", device=model.device),
    )
    if shard.world_size == 1:  # each pass over the loader draws worker seeds from its generator: not from the sampler's
        loader.generator = stream(seed, "loader")
    return engine, module, optimizer, loader


def train_private(
    model: SynthesisModel,
    loss: Loss,
    train: WindowTokens,
    persons: np.ndarray,
    validation: WindowTokens,
    config: TrainingSection,
    privacy: PrivacySection,
    *,
    seed: int,
    on_epoch: Callable[[dict], None] | None = None,
    hide_summary: float = 0.0,
    checkpointing: Checkpointing | None = None,
    keep_start: bool = False,
) -> tuple[TrainingResult, PrivacyAccounting]:
    """Train ``model.generator`` in place under (epsilon, delta)-DP per training person.

    ``persons`` labels each training window with its person. ``config`` contributes the learning
    rate and weight decay; its epochs, batch size and patience do not apply (steps and the sampling
    rate are set by ``privacy``). The model ends holding the checkpoint validation liked best.
    Under torchrun every rank calls this with the same arguments and ends with the same weights.
    With ``checkpointing`` (one process) a killed run resumes with the accountant, the optimizer
    and every random stream where they were: the same steps, noise and guarantee as a run never killed.
    ``keep_start``: the starting weights (a base) are a candidate too, chosen by the same validation persons.
    """
    device = model.device
    shard = Shard.of_process_group()
    train, validation = train.to(device), validation.to(device)
    dataset = PersonWindows(train, np.asarray(persons), stream(seed, "windows", shard.rank))
    delta = resolve_delta(privacy, len(dataset))
    noise_multiplier = calibrate_noise(privacy, delta)
    with frozen_for_dp(model) as frozen:
        trained = sum(p.numel() for p in model.generator.parameters() if p.requires_grad)
        engine, module, optimizer, loader = make_private(model, dataset, config, privacy, noise_multiplier, shard, seed)
        plan = private_plan(engine, module, optimizer, loader, loss, privacy, checkpointing, keep_start)
        try:
            result, _ = run_training(model, plan, validation, config, on_epoch=on_epoch, hide_summary=hide_summary)
        finally:
            module.cleanup()
    accounting = spent(engine, privacy, delta, noise_multiplier, len(dataset), frozen, shard, trained)
    result.stopped = (
        f"privacy budget spent: {privacy.steps} noisy steps, epsilon {accounting.epsilon:.2f} at delta {delta:.1e}"
    )
    return result, accounting


def private_plan(
    engine: PrivacyEngine,
    module: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: DataLoader,
    loss: Loss,
    privacy: PrivacySection,
    checkpointing: Checkpointing | None,
    keep_start: bool = False,
) -> TrainingPlan:
    """DP-SGD as the shared loop runs it: Opacus' module and optimizer, rounds of noisy steps
    between checkpoints, a per-window loss, and what a checkpoint must keep to resume exactly (every
    random stream and the accountant's history)."""
    rngs = training_generators(
        loss, persons=loader.batch_sampler.generator, windows=loader.dataset.generator, noise=optimizer.generator
    )
    return TrainingPlan(
        module,
        optimizer,
        loss,
        lambda state: checkpoint_rounds(loader, privacy, done=state.steps),
        lambda logits, targets: per_window_loss(loss, logits, targets),
        privacy.steps,
        checkpointing=checkpointing,
        rngs=rngs,
        extra_state=(
            lambda: {"accountant": engine.accountant.state_dict()},
            lambda extra: engine.accountant.load_state_dict(extra["accountant"]),
        ),
        keep_start=keep_start,
    )


def spent(
    engine: PrivacyEngine,
    privacy: PrivacySection,
    delta: float,
    noise_multiplier: float,
    persons: int,
    frozen: list[str],
    shard: Shard,
    trained: int,
) -> PrivacyAccounting:
    """What training spent, as the accountant reports it; more than the target is an error."""
    # the accountant's upper bound; it can dip below 0 by numerical error where the true epsilon is ~0,
    # and epsilon is never negative, so 0 is the sound report there
    epsilon = max(engine.get_epsilon(delta), 0.0)
    if epsilon > privacy.target_epsilon * 1.001:
        raise SynthwearError(f"privacy: spent epsilon {epsilon:.4f} exceeds the target {privacy.target_epsilon}")
    return PrivacyAccounting(
        epsilon=epsilon,
        delta=delta,
        target_epsilon=privacy.target_epsilon,
        delta_source="recipe" if privacy.target_delta is not None else f"1/(10 x {persons} training persons)",
        accountant=privacy.accountant,
        noise_multiplier=noise_multiplier,
        sample_rate=privacy.sample_rate,
        steps=privacy.steps,
        max_grad_norm=privacy.max_grad_norm,
        train_persons=persons,
        frozen_parameters=frozen,
        trained_values=trained,
        checkpoints=privacy.checkpoints,
        processes=shard.world_size,
    )
