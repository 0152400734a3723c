import numpy as np
import pytest
from fidelity_fixtures import context, persons

from synthwear.default_plugins.temporal import TemporalConfig, TemporalStructure, autocorrelation, between_window_share


def test_autocorrelation_finds_ar1_persistence_and_none_in_white_noise():
    rng = np.random.default_rng(0)
    ar = persons(300, 30, 0, phi=0.8, person_levels=False).values[:, :, 0]
    assert autocorrelation(ar, [1])[0] > 0.6
    assert abs(autocorrelation(rng.normal(size=(300, 30)), [1])[0]) < 0.1


def test_between_window_share_separates_distinct_persons_from_one_average_person():
    distinct = persons(200, 21, 0).values[:, :, 0]
    average = persons(200, 21, 0, person_levels=False).values[:, :, 0]
    assert between_window_share(distinct) > 0.6 > 0.4 > between_window_share(average)


def test_one_average_person_cohort_is_judged_poor_on_person_structure():
    results = TemporalStructure().evaluate(context(persons(200, 14, 3, phi=0.5, person_levels=False)))
    verdicts = {(r["metric"], r["channel"]): r["verdict"] for r in results["verdict"]}
    assert verdicts[("between-person variance share error", "resting_hr")] == "poor"
    assert results["lags"] == [1, 2, 3, 4, 5, 6, 7]
    assert "plotly-graph-div" in TemporalStructure().report_section(results, {})


def test_too_short_windows_are_an_error_of_the_options():
    with pytest.raises(ValueError, match="needs windows of at least 3 days, got 2"):
        TemporalStructure(TemporalConfig()).evaluate(context(persons(20, 2, 3), days=2))


def test_lags_default_to_a_week_where_the_window_allows_and_are_never_capped_silently():
    assert TemporalConfig().lags(21) == list(range(1, 8))
    assert TemporalConfig().lags(7) == [1, 2, 3, 4, 5]  # the default shrinks to what 7-day windows can pair
    assert TemporalConfig(max_lag=3).lags(21) == [1, 2, 3]
    with pytest.raises(ValueError, match="max_lag 20 does not fit 21-day windows"):
        TemporalStructure(TemporalConfig(max_lag=20)).check(["steps"], 21)
