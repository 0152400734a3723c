"""Calendar covariates: the codes of known dates, and the covariates of persons on any day."""

import numpy as np

from synthwear.covariates import PersonCovariates, calendar_codes, covariate_sizes, unknown_to_ids


def test_weekday_and_month_of_known_dates():
    dates = np.array(["1970-01-01", "2026-11-28", "2024-02-29", "2023-12-31"], dtype="datetime64[D]")
    codes = calendar_codes(dates, ("weekday", "month"))
    assert codes[:, 0].tolist() == [3, 5, 3, 6]  # Thursday, Saturday, Thursday, Sunday (Monday = 0)
    assert codes[:, 1].tolist() == [0, 10, 1, 11]  # January = 0
    assert calendar_codes(dates, ()).shape == (4, 0)


def test_persons_covariates_follow_each_ones_first_day():
    persons = PersonCovariates(np.array(["2026-11-28", "2026-11-30"], dtype="datetime64[D]"), ("weekday",))
    assert persons.at(np.array([[0, 1, 2], [0, 1, 2]]))[..., 0].tolist() == [[5, 6, 0], [0, 1, 2]]
    assert persons.at(np.array([[9], [0]]))[..., 0].tolist() == [[0], [0]]  # 9 days after a Saturday: Monday
    assert covariate_sizes(("weekday", "month")) == (7, 12)


def test_unknown_codes_become_the_unknown_id():
    assert unknown_to_ids(np.array([[3, -1], [-1, 0]]), (7, 12)).tolist() == [[3, 12], [7, 0]]


def test_an_unknown_date_has_an_unknown_calendar():
    codes = calendar_codes(np.array(["NaT", "2024-01-06"], dtype="datetime64[D]"), ("weekday", "month"))
    assert codes.tolist() == [[-1, -1], [5, 0]]
