"""Calibrating the noise a budget buys: a budget no noise reaches, or one reached with almost none,
is refused at once instead of searched for."""

import pytest

from synthwear.errors import SynthwearError
from synthwear.privacy.accounting import NOISE_FLOOR, calibrate_noise, epsilon_at
from synthwear.recipe import PrivacySection


@pytest.mark.parametrize("target_epsilon", [1e6, 1e300])
def test_a_budget_reached_with_almost_no_noise_is_refused_at_once(target_epsilon):
    """Opacus' search would halve the noise towards zero, the PRV accountant's memory growing until
    the machine runs out (1e6 did)."""
    with pytest.raises(SynthwearError, match=f"reached with a noise multiplier below {NOISE_FLOOR:g}"):
        calibrate_noise(PrivacySection(target_epsilon=target_epsilon), 1e-3)


def test_a_budget_just_above_the_floor_is_still_calibrated():
    settings = {"sample_rate": 0.5, "steps": 10, "accountant": "rdp"}
    floor = epsilon_at(NOISE_FLOOR, 1e-3, settings["sample_rate"], settings["steps"], "rdp")
    sigma = calibrate_noise(PrivacySection(target_epsilon=0.9 * floor, **settings), 1e-3)
    assert NOISE_FLOOR < sigma < 1.5 * NOISE_FLOOR
