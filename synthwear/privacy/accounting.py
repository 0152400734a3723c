"""How much noise the budget buys, and what a run spent: the numbers run.json and the report show."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from opacus.accountants import create_accountant
from opacus.accountants.utils import MAX_SIGMA, get_noise_multiplier

from synthwear.errors import SynthwearError
from synthwear.recipe import PrivacySection

PRIVACY_UNIT = "person"
SAMPLING = "Poisson sampling of persons (rate q per step), one uniformly chosen window per sampled person"


def resolve_delta(privacy: PrivacySection, train_persons: int) -> float:
    """The recipe's delta, else 1/(10 n): well under the 1/n at which releasing one person is allowed."""
    return privacy.target_delta if privacy.target_delta is not None else 1.0 / (10 * train_persons)


def calibrate_noise(privacy: PrivacySection, delta: float) -> float:
    """The smallest noise multiplier whose guarantee after exactly ``privacy.steps`` steps is within budget."""
    accountant = create_accountant(privacy.accountant)
    accountant.history = [(MAX_SIGMA, privacy.sample_rate, privacy.steps)]  # the most noise Opacus will try
    if accountant.get_epsilon(delta=delta) > privacy.target_epsilon:  # one evaluation, not Opacus' 17 doublings
        raise SynthwearError(
            f"privacy: target epsilon {privacy.target_epsilon:g} at delta {delta:.1e} cannot be reached in "
            f"{privacy.steps} steps at sample_rate {privacy.sample_rate:g}, even with noise multiplier {MAX_SIGMA:g}; "
            "raise target_epsilon or lower steps or sample_rate"
        )
    try:
        return get_noise_multiplier(
            target_epsilon=privacy.target_epsilon,
            target_delta=delta,
            sample_rate=privacy.sample_rate,
            steps=privacy.steps,
            accountant=privacy.accountant,
        )
    except ValueError as err:
        raise SynthwearError(
            f"privacy: target epsilon {privacy.target_epsilon:g} at delta {delta:.1e} cannot be reached in "
            f"{privacy.steps} steps at sample_rate {privacy.sample_rate:g} ({err}); raise target_epsilon or "
            "lower steps or sample_rate"
        ) from None


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
    checkpoints: int  # the validation persons (not covered by the guarantee) chose among these
    processes: int = 1  # torchrun ranks that shared the persons; the noise was added once, on rank 0
    unit: str = PRIVACY_UNIT
    sampling: str = SAMPLING

    def to_dict(self) -> dict:
        return asdict(self)
