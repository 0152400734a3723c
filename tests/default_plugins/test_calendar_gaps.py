"""The weekday-and-gaps evaluator on cohorts whose weekday effect and gaps are known."""

import numpy as np
import pytest
from fidelity_fixtures import context, persons

from synthwear.default_plugins.calendar_gaps import CalendarAndGaps, gap_runs, weekday_means
from synthwear.errors import NotEstimable
from synthwear.interfaces import Windows

SATURDAY_2026 = np.datetime64("2026-11-28")


def dated(windows: Windows, first: np.datetime64, saturday_steps: float = 0.0) -> Windows:
    """Windows starting on consecutive days from ``first``, with ``saturday_steps`` added on Saturdays."""
    n, days, _ = windows.values.shape
    start = first + np.arange(n).astype("timedelta64[D]")
    weekday = ((start[:, None] + np.arange(days).astype("timedelta64[D]")).astype("int64") + 3) % 7
    values = windows.values.copy()
    values[..., 2] += np.where(weekday == 5, saturday_steps, 0.0)
    return Windows(values, windows.person, start)


def test_weekday_means_find_a_known_saturday_effect():
    windows = dated(persons(200, 14, 3), SATURDAY_2026, saturday_steps=2000.0)
    means = weekday_means(windows)
    assert means.shape == (7, 3)
    assert means[5, 2] - means[:5, 2].mean() == pytest.approx(2000, abs=400)
    with pytest.raises(NotEstimable):
        weekday_means(Windows(windows.values, windows.person))


def test_gap_runs_are_the_mean_length_of_missing_stretches():
    values = np.array([[1, np.nan, np.nan, 1, np.nan], [1, 1, 1, 1, 1]])
    assert gap_runs(values) == pytest.approx(1.5)  # runs of 2 and 1
    assert gap_runs(values[1:]) is None


def test_a_cohort_without_the_weekday_effect_or_gaps_is_told_apart():
    ctx = context(persons(60, 14, 9))
    ctx.holdout = dated(ctx.holdout, SATURDAY_2026, saturday_steps=3000.0)
    ctx.synthetic = dated(persons(300, 14, 5), SATURDAY_2026)  # no gaps, flat week
    flat = CalendarAndGaps().evaluate(ctx)["channels"]["steps"]
    assert flat["real"]["missing_share"] == pytest.approx(0.1, abs=0.02)
    assert flat["synthetic"]["missing_share"] == 0 and flat["synthetic"]["mean_gap_days"] is None
    assert flat["saturday_effect_ratio"] < 0.3
    ctx.synthetic = dated(persons(300, 14, 5, gaps=0.1), SATURDAY_2026, saturday_steps=3000.0)
    faithful = CalendarAndGaps().evaluate(ctx)["channels"]["steps"]
    assert abs(faithful["missing_share_difference"]) < 0.02
    assert 0.8 < faithful["saturday_effect_ratio"] < 1.2
    assert "Saturday" in CalendarAndGaps().report_section({"channels": {"steps": faithful}}, {})


def test_synthetic_windows_are_filtered_as_real_ones_are():
    ctx = context(persons(60, 14, 9))
    ctx.holdout, ctx.synthetic = dated(ctx.holdout, SATURDAY_2026), dated(persons(100, 14, 5, gaps=0.9), SATURDAY_2026)
    with pytest.raises(NotEstimable, match="observed"):  # tiny.yaml keeps windows with half their cells observed
        CalendarAndGaps().evaluate(ctx)
