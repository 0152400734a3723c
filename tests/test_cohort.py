import numpy as np
from cohorts import CHANNELS

from synthwear.cohort import Cohort


def test_calendar_is_gap_filled_and_windows_match_frame(daily_frame):
    frame = daily_frame.drop(index=[5, 6]).reset_index(drop=True)  # a two-day hole in p00
    cohort = Cohort.from_frame(frame, CHANNELS)
    assert cohort.n_persons == 8 and cohort.values.shape == (8 * 40, 3)
    starts = cohort.window_starts(7, stride=1)
    assert len(starts) == 8 * (40 - 7 + 1)
    windows = cohort.windows(starts, 7)
    w = 3
    person, first = windows.person[w], windows.start[w]
    expected = frame[
        (frame.person_id == person) & (frame.date >= first) & (frame.date < first + np.timedelta64(7, "D"))
    ]
    got = windows.values[w]
    day = (expected.date.to_numpy().astype("datetime64[D]") - first).astype(int)
    np.testing.assert_allclose(got[day], expected[CHANNELS].to_numpy(np.float32))
    assert np.isnan(got[np.setdiff1d(np.arange(7), day)]).all()


def test_min_observed_and_stride(daily_frame):
    cohort = Cohort.from_frame(daily_frame, CHANNELS)
    every = cohort.window_starts(5, stride=1)
    strided = cohort.window_starts(5, stride=5)
    assert len(strided) == 8 * 8 and set(strided) <= set(every)
    share = cohort.observed_share(every, 5)
    dense = cohort.window_starts(5, stride=1, min_observed=0.95)
    assert set(dense) == set(every[share >= 0.95]) and len(dense) < len(every)
    direct = (~np.isnan(cohort.gather(every, 5))).mean(axis=(1, 2))
    np.testing.assert_allclose(share, direct)


def test_select_keeps_persons_days(daily_frame):
    cohort = Cohort.from_frame(daily_frame, CHANNELS)
    sub = cohort.select(np.array([5, 2]))
    assert list(sub.person_ids) == ["p05", "p02"]
    np.testing.assert_array_equal(sub.values[:40], cohort.values[5 * 40 : 6 * 40])
