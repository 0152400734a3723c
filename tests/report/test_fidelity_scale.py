import numpy as np

from synthwear.fidelity_scale import independent_days, verdict, verdict_row
from synthwear.interfaces import Windows


def test_verdict_is_measured_in_thirds_of_the_ceiling_to_floor_gap():
    assert verdict(0.95, 0.9, 0.3, higher_is_better=True, resolution=0.05) == "good"  # beats the ceiling
    assert verdict(0.75, 0.9, 0.3, higher_is_better=True, resolution=0.05) == "good"  # 0.15 short of a 0.6 gap
    assert verdict(0.55, 0.9, 0.3, higher_is_better=True, resolution=0.05) == "fair"
    assert verdict(0.40, 0.9, 0.3, higher_is_better=True, resolution=0.05) == "poor"
    assert verdict(2.0, 1.0, 4.0, higher_is_better=False, resolution=0.1) == "good"
    assert verdict(3.5, 1.0, 4.0, higher_is_better=False, resolution=0.1) == "poor"


def test_resolution_keeps_the_rule_meaningful_when_floor_equals_ceiling():
    assert verdict(0.86, 0.88, 0.88, higher_is_better=True, resolution=0.1) == "good"
    assert verdict(0.80, 0.88, 0.88, higher_is_better=True, resolution=0.1) == "poor"


def test_row_without_all_three_scores_has_no_verdict():
    row = verdict_row(
        "x", None, {"synthetic": 0.5, "ceiling": None, "floor": 0.1}, higher_is_better=True, resolution=0.1
    )
    assert row["verdict"] is None


def test_independent_days_keep_each_channels_values_but_no_order():
    days = np.arange(200, dtype=float).reshape(20, 10, 1)
    days[0, 0, 0] = np.nan
    floor = independent_days(Windows(days, np.arange(20)), 500, seed=0).values
    assert floor.shape == (500, 10, 1) and not np.isnan(floor).any()
    assert set(np.unique(floor)) <= set(days[~np.isnan(days)])
    lag1 = np.corrcoef(floor[:, 1:, 0].ravel(), floor[:, :-1, 0].ravel())[0, 1]
    assert abs(lag1) < 0.1
