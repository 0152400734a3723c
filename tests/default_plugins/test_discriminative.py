import numpy as np
from fidelity_fixtures import context, persons

from synthwear.default_plugins.discriminative import DiscriminativeScore, leaf_rows, with_missing_days_of
from synthwear.interfaces import Windows


def test_a_faithful_cohort_is_hard_to_tell_apart_and_a_too_calm_one_easy():
    faithful = DiscriminativeScore().evaluate(context(persons(60, 14, 3)))
    calm_values = persons(60, 14, 3).values
    calm_values = calm_values.mean(axis=1, keepdims=True) + 0.2 * (
        calm_values - calm_values.mean(axis=1, keepdims=True)
    )
    calm = DiscriminativeScore().evaluate(context(Windows(calm_values, np.arange(60))))
    assert faithful["synthetic"]["score"] < 0.2
    assert calm["synthetic"]["score"] > 0.35
    assert calm["floor"]["score"] > faithful["synthetic"]["score"]
    assert calm["synthetic"]["roc"]["auc"] > 0.9


def test_a_small_holdout_still_tells_a_too_calm_cohort_apart_and_scores_vary_with_the_cohort():
    """Trees whose leaves need 20 rows cannot split on 5-fold training sets of 22 windows per class:
    every cohort got the same score from the class shares alone."""
    calm_values = persons(60, 14, 3).values
    calm_values = calm_values.mean(axis=1, keepdims=True) + 0.2 * (
        calm_values - calm_values.mean(axis=1, keepdims=True)
    )
    calm = DiscriminativeScore().evaluate(context(Windows(calm_values, np.arange(60)), holdout=22))
    faithful = DiscriminativeScore().evaluate(context(persons(60, 14, 3), holdout=22))
    assert calm["synthetic"]["windows_per_class"] == 22
    assert calm["synthetic"]["score"] > 0.3
    assert faithful["synthetic"]["score"] < calm["synthetic"]["score"] - 0.15


def test_leaves_are_the_library_default_wherever_a_fold_can_fill_two():
    assert [leaf_rows(rows) for rows in (8, 35, 39, 40, 70, 1000)] == [4, 17, 19, 20, 20, 20]


def test_missing_days_are_copied_from_real_windows_so_gaps_give_nothing_away():
    donor = persons(10, 14, 0, gaps=0.3).values
    copied = with_missing_days_of(persons(50, 14, 1).values, donor, np.random.default_rng(0))
    masks = {np.isnan(w).tobytes() for w in donor}
    assert all(np.isnan(w).tobytes() in masks for w in copied)
