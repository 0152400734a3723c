"""Summary days: a person's level and spread, the ids they are given, over a window or a whole person."""

from __future__ import annotations

import math

import numpy as np
import torch

from synthwear.interfaces import MISSING
from synthwear.summary import person_summary, spread_id, spread_of_id, window_summary


def test_spread_ids_are_a_log_scale_over_the_bins_and_read_back_as_log1p():
    changes = torch.tensor([0.0, 0.5, 1.0, 3.0, 10.0, 99.0, 1000.0])
    ids = spread_id(changes, 100)
    assert ids.tolist() == [0, 9, 15, 30, 52, 100 - 1, 100 - 1]  # round(100 log1p(d) / log1p(100)), capped
    back = spread_of_id(ids[:5], 100)
    step = math.log1p(100) / 100  # one id apart
    assert (back - torch.log1p(changes[:5])).abs().max() <= step / 2 + 1e-6


def test_a_windows_summary_is_its_mean_bin_then_its_mean_change_between_observed_days():
    windows = torch.tensor([[[1, 4, MISSING], [2, MISSING, MISSING], [4, 6, MISSING], [4, 9, 3]]])
    level, spread = window_summary(windows, 2, [20, 20, 20])[0]
    assert level.tolist() == [3, 6, 3]  # 11/4 rounds to 3; 19/3 to 6; one observed day
    # changes between observed neighbours: 1, 2, 0 (mean 1); 3 (the only pair); none
    assert spread.tolist() == [
        spread_id(torch.tensor(1.0), 20).item(),
        spread_id(torch.tensor(3.0), 20).item(),
        MISSING,
    ]
    assert window_summary(windows, 1, [20, 20, 20]).shape == (1, 1, 3)  # the level alone


def test_a_persons_summary_is_over_all_their_days_and_never_pairs_two_persons_days():
    tokens = np.array([[2, 10], [4, MISSING], [7, 11], [MISSING, MISSING], [1, 5], [MISSING, 6]])
    offsets = np.array([0, 3, 4, 6])  # persons of 3, 1 and 2 days
    levels = person_summary(tokens, offsets, 1, [20, 20])
    expected = [[4, 10], [4, 10], [4, 10], [MISSING, MISSING], [1, 6], [1, 6]]  # (10 + 11) / 2 rounds to 10
    np.testing.assert_array_equal(levels, expected)
    both = person_summary(tokens, offsets, 2, [20, 20])
    np.testing.assert_array_equal(both[:, :2], expected)
    first = [spread_id(torch.tensor(2.5), 20).item(), MISSING]  # changes 2 and 3; the second channel: no pair
    last = [MISSING, spread_id(torch.tensor(1.0), 20).item()]  # person 3's days 5 -> 6; none across persons
    np.testing.assert_array_equal(both[:, 2:], [first] * 3 + [[MISSING, MISSING]] + [last] * 2)
