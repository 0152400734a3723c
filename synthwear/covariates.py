"""What the model is told about a day instead of predicting it: the calendar (and, per person, attributes).

A covariate is an input-only channel: at every position the generator reads, besides the previous
day's tokens, the covariates of the day it is about to predict, so a Saturday can be predicted as a
Saturday. To the generator a covariate is one more channel of ids (``0 .. size-1``, ``size`` for
unknown); the engine never scores or samples it (``SynthesisModel.scored``), so any generator
plugin takes covariates without knowing what they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synthwear.interfaces import MISSING

CALENDAR_SIZES = {"weekday": 7, "month": 12}  # Monday = 0; January = 0

# A channel's "observed" twin (``windows.gaps``): a day is 0 (a gap) or OBSERVED; the ids between are
# the summary day's share of observed days (its mean, as for values), so a synthetic person's level
# of gaps is drawn first, with their values' levels, rather than rounded to "mostly observed".
OBSERVED = 10
PRESENCE_SIZE = OBSERVED + 1


def calendar_codes(dates: np.ndarray, features: tuple[str, ...]) -> np.ndarray:
    """(...,) datetime64[D] -> (..., K) int64 codes of the calendar ``features``."""
    days = dates.astype("datetime64[D]")
    unknown = np.isnat(days)  # an unknown date has an unknown calendar, not NaT's arithmetic
    columns = []
    for feature in features:
        if feature == "weekday":
            code = (days.astype("int64") + 3) % 7  # 1970-01-01 was a Thursday
        elif feature == "month":
            code = days.astype("datetime64[M]").astype("int64") % 12
        else:  # the recipe's schema admits only CALENDAR_SIZES' names
            raise ValueError(f"unknown calendar feature {feature!r}")
        columns.append(np.where(unknown, MISSING, code))
    return np.stack(columns, axis=-1).astype(np.int64) if columns else np.empty((*days.shape, 0), np.int64)


@dataclass
class PersonCovariates:
    """The covariates of a batch of persons on any day: their calendar from each one's start date,
    then their attributes (the same every day)."""

    start: np.ndarray  # (B,) datetime64[D]: each person's first day
    calendar: tuple[str, ...] = ()
    attributes: np.ndarray | None = None  # (B, A) attribute codes (MISSING where unknown)

    def at(self, days: np.ndarray) -> np.ndarray:
        """(B, T) int64 day indices (0 = a person's first day) -> (B, T, K) covariate codes."""
        dates = self.start[:, None] + np.asarray(days).astype("timedelta64[D]")
        attributes = None if self.attributes is None else self.attributes[:, None, :]
        return with_attributes(calendar_codes(dates, self.calendar), attributes)


def with_attributes(codes: np.ndarray, attributes: np.ndarray | None) -> np.ndarray:
    """Calendar codes (..., K) with attribute codes appended: ``attributes`` holds one row per leading
    index of ``codes`` or broadcasts to them (a person's (B, 1, A) over all their days)."""
    if attributes is None:
        return codes
    every_day = np.broadcast_to(attributes, (*codes.shape[:-1], attributes.shape[-1]))
    return np.concatenate([codes, every_day], axis=-1)


def covariate_sizes(calendar: tuple[str, ...], attribute_sizes: tuple[int, ...] = ()) -> tuple[int, ...]:
    return tuple(CALENDAR_SIZES[feature] for feature in calendar) + tuple(attribute_sizes)


def unknown_to_ids(codes: np.ndarray, sizes: tuple[int, ...]) -> np.ndarray:
    """Codes with MISSING for unknown -> generator ids (``size`` for unknown)."""
    return np.where(codes == MISSING, np.array(sizes, dtype=np.int64), codes)
