"""Calibrating the noise a budget buys: a budget no noise reaches, or one reached with almost none,
is refused at once instead of searched for."""

import pytest

from synthwear import Synthesizer
from synthwear.errors import SynthwearError
from synthwear.privacy.accounting import NOISE_FLOOR, calibrate_noise, check_budget, epsilon_at
from synthwear.recipe import PrivacySection, load_recipe, parse_recipe


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


@pytest.mark.parametrize(
    ("privacy", "expected"),
    [
        ({"target_epsilon": 1e6}, "reached with a noise multiplier below"),  # at any delta a cohort could give
        ({"target_epsilon": 0.01, "sample_rate": 1, "steps": 10**7, "accountant": "rdp"}, "cannot be reached"),
        ({"target_epsilon": 1e6, "target_delta": 1e-5}, "reached with a noise multiplier below"),
    ],
)
def test_a_budget_no_cohort_could_use_is_refused_before_the_data_is_read(tiny_recipe, tmp_path, privacy, expected):
    raw = load_recipe(tiny_recipe).to_dict()
    raw["data"] = {"path": str(tmp_path / "not-there.csv")}  # reading it would fail: the budget is checked first
    raw["privacy"] = privacy
    with pytest.raises(SynthwearError, match=expected):
        Synthesizer(parse_recipe(raw)).fit(progress=False)


def test_a_usable_budget_passes_the_early_check_whatever_the_cohort():
    check_budget(PrivacySection(target_epsilon=3.0))
    check_budget(PrivacySection(target_epsilon=3.0, target_delta=1e-5))
