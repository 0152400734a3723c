"""How much noise the budget buys, and what a run spent: the numbers run.json and the report show."""

from __future__ import annotations

import functools
import warnings
from dataclasses import asdict, dataclass

from opacus.accountants import create_accountant
from opacus.accountants.utils import get_noise_multiplier

from synthwear.errors import SynthwearError
from synthwear.recipe import PrivacySection

PRIVACY_UNIT = "person"
SAMPLING = "Poisson sampling of persons (rate q per step), one uniformly chosen window per sampled person"


def resolve_delta(privacy: PrivacySection, train_persons: int) -> float:
    """The recipe's delta, else 1/(10 n): well under the 1/n at which releasing one person is allowed."""
    return privacy.target_delta if privacy.target_delta is not None else 1.0 / (10 * train_persons)


# Noise beyond this drowns any gradient a cohort could sum to; a budget that needs more is refused
# at once (Opacus' own search doubles up to 1e6, each evaluation slower than the last).
NOISE_CEILING = 1e3
# Noise below this guarantees nothing a person would call privacy (ε near 200 at the default settings);
# a budget reached with less is refused at once: Opacus' search would halve the noise towards zero,
# and the PRV accountant's time and memory grow as it does (ε = 300: 2 minutes and 5 GB; ε = 1e6
# exhausts the machine).
NOISE_FLOOR = 0.5


def calibrate_noise(privacy: PrivacySection, delta: float) -> float:
    """The smallest noise multiplier whose guarantee after exactly ``privacy.steps`` steps is within budget."""
    return noise_for_budget(privacy.target_epsilon, delta, privacy.sample_rate, privacy.steps, privacy.accountant)


# Without target_delta, delta is 1/(10 n) for the n training persons: within these bounds for any
# cohort of 2 to 5 x 10^10 persons, so a budget that fails at both ends is refused before data is read.
DEFAULT_DELTA_BOUNDS = (2e-12, 0.05)


def check_budget(privacy: PrivacySection) -> None:
    """Refuse, before any data is read or model built, a budget that no noise multiplier between
    NOISE_FLOOR and NOISE_CEILING meets (the cohort's size only sets the default delta)."""
    if privacy.target_delta is not None:
        calibrate_noise(privacy, privacy.target_delta)  # remembered: training asks for it again
        return
    check_noise_range(
        privacy.target_epsilon, DEFAULT_DELTA_BOUNDS, privacy.sample_rate, privacy.steps, privacy.accountant
    )


def check_noise_range(
    target_epsilon: float, deltas: tuple[float, float], sample_rate: float, steps: int, accountant: str
) -> None:
    """Refuse a budget not met even with noise NOISE_CEILING at the larger delta, or met with noise
    below NOISE_FLOOR even at the smaller one (Opacus' search would double or halve the noise without end)."""
    low, high = deltas
    at = f"delta {high:.1e}" if low == high else f"any delta from {low:.0e} to {high:g} (1/(10 n) for n persons)"
    unreachable = unreachable_budget(target_epsilon, at, sample_rate, steps)
    if epsilon_at(NOISE_CEILING, high, sample_rate, steps, accountant) > target_epsilon:  # not Opacus' doublings
        raise SynthwearError(
            f"{unreachable} even with noise multiplier {NOISE_CEILING:g}; raise target_epsilon or lower steps or "
            "sample_rate"
        )
    floor = epsilon_at(NOISE_FLOOR, low, sample_rate, steps, "rdp")  # RDP: milliseconds, and PRV only tightens it
    if floor <= target_epsilon:
        raise SynthwearError(
            f"privacy: target epsilon {target_epsilon:g} is reached with a noise multiplier below {NOISE_FLOOR:g} "
            f"(at {NOISE_FLOOR:g}, {steps} steps at sample_rate {sample_rate:g} spend only epsilon {floor:.3g}): that "
            "guarantees nothing; lower target_epsilon, or train without privacy (privacy-plan: --epsilon inf)"
        )


@functools.lru_cache(maxsize=64)
def noise_for_budget(target_epsilon: float, delta: float, sample_rate: float, steps: int, accountant: str) -> float:
    """``calibrate_noise`` by value, remembered: the search costs seconds, and a benchmark or a
    privacy plan asks for the same budget again and again."""
    check_noise_range(target_epsilon, (delta, delta), sample_rate, steps, accountant)
    try:
        return get_noise_multiplier(
            target_epsilon=target_epsilon,
            target_delta=delta,
            sample_rate=sample_rate,
            steps=steps,
            accountant=accountant,
        )
    except ValueError as err:
        unreachable = unreachable_budget(target_epsilon, f"delta {delta:.1e}", sample_rate, steps)
        raise SynthwearError(f"{unreachable} ({err}); raise target_epsilon or lower steps or sample_rate") from None


def unreachable_budget(target_epsilon: float, at: str, sample_rate: float, steps: int) -> str:
    return f"privacy: target epsilon {target_epsilon:g} at {at} cannot be reached in {steps} steps at sample_rate {sample_rate:g}"


def epsilon_at(noise_multiplier: float, delta: float, sample_rate: float, steps: int, accountant: str) -> float:
    """The epsilon ``steps`` steps with this noise spend, by one evaluation of ``accountant``."""
    counted = create_accountant(accountant)
    counted.history = [(noise_multiplier, sample_rate, steps)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # RDP's notice that its orders could be wider, at very little noise
        return counted.get_epsilon(delta=delta)


@dataclass
class PrivacyAccounting:
    """The guarantee a private run holds, per person: (epsilon, delta) after ``steps`` noisy steps."""

    epsilon: float  # spent, as the accountant computes it for the steps actually taken
    delta: float
    target_epsilon: float
    delta_source: str  # "recipe", or how the default was derived
    accountant: str
    noise_multiplier: float
    sample_rate: float
    steps: int
    max_grad_norm: float
    train_persons: int
    frozen_parameters: list[str]  # kept at their initial values: no per-person gradient exists for them
    trained_values: int  # scalars DP-SGD trained (all, or what base.train chose): the noise is added to each
    checkpoints: int  # the validation persons (not covered by the guarantee) chose among these
    processes: int = 1  # torchrun ranks that shared the persons; the noise was added once, on rank 0
    unit: str = PRIVACY_UNIT
    sampling: str = SAMPLING

    def to_dict(self) -> dict:
        return asdict(self)
