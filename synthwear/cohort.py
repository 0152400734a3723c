"""A cohort as one calendar-complete array, and windows as offsets into it.

Every person's days are laid out consecutively, gaps filled with NaN, so a window is just a start
row: memory grows with the number of person-days, not with days x window overlap, and a batch of
windows is one fancy-indexing gather.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from synthwear.interfaces import Windows


@dataclass
class Cohort:
    channels: list[str]
    person_ids: np.ndarray  # (P,) str
    offsets: np.ndarray  # (P+1,) int64: person p's days are rows offsets[p]:offsets[p+1]
    first_date: np.ndarray  # (P,) datetime64[D]
    values: np.ndarray  # (D, C) float32, NaN = missing
    attributes: np.ndarray | None = None  # (P, A) each person's attribute codes (AttributeModel.encode)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, channels: list[str], dtype: type = np.float32) -> Cohort:
        """Lay out a validated daily table (sorted by person, date) on a gap-filled calendar
        (float32 halves the memory of a large cohort; float64 keeps a user's values exactly)."""
        person_codes, person_ids = pd.factorize(frame["person_id"], sort=True)
        dates = frame["date"].to_numpy().astype("datetime64[D]")
        grouped = pd.Series(dates).groupby(person_codes)
        first = grouped.min().to_numpy().astype("datetime64[D]")
        last = grouped.max().to_numpy().astype("datetime64[D]")
        lengths = (last - first).astype("int64") + 1
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        values = np.full((offsets[-1], len(channels)), np.nan, dtype=dtype)
        rows = offsets[person_codes] + (dates - first[person_codes]).astype("int64")
        values[rows] = frame[channels].to_numpy(dtype=dtype)
        return cls(list(channels), np.asarray(person_ids, dtype=str), offsets, first, values)

    @property
    def n_persons(self) -> int:
        return len(self.person_ids)

    def select(self, persons: np.ndarray) -> Cohort:
        """The sub-cohort of the given person indices (in that order)."""
        persons = np.asarray(persons, dtype=np.int64)
        lengths = np.diff(self.offsets)[persons]
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        rows = np.repeat(self.offsets[persons] - offsets[:-1], lengths) + np.arange(offsets[-1])
        attributes = None if self.attributes is None else self.attributes[persons]
        return Cohort(
            self.channels, self.person_ids[persons], offsets, self.first_date[persons], self.values[rows], attributes
        )

    def dates(self) -> np.ndarray:
        """(D,) datetime64[D]: the date of every row."""
        person = self.row_persons()
        return self.first_date[person] + (np.arange(self.offsets[-1]) - self.offsets[person]).astype("timedelta64[D]")

    def row_persons(self) -> np.ndarray:
        """(D,) the person index of every row."""
        return np.repeat(np.arange(self.n_persons), np.diff(self.offsets))

    def row_attributes(self) -> np.ndarray | None:
        """(D, A) every row's person's attribute codes, when the cohort has them."""
        return None if self.attributes is None else self.attributes[self.row_persons()]

    def first_day_counts(self) -> dict[str, int]:
        """How many persons start on each date (ISO date -> count)."""
        dates, counts = np.unique(self.first_date, return_counts=True)
        return {str(d): int(c) for d, c in zip(dates, counts)}

    def window_starts(self, days: int, stride: int = 1, min_observed: float = 0.0) -> np.ndarray:
        """Start rows of every window of ``days`` consecutive days with enough observed cells."""
        lengths = np.diff(self.offsets)
        counts = np.maximum(0, (lengths - days) // stride + 1)
        person = np.repeat(np.arange(self.n_persons), counts)
        index_in_person = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        starts = self.offsets[person] + index_in_person * stride
        return starts[self.observed_share(starts, days) >= min_observed]

    def observed_share(self, starts: np.ndarray, days: int) -> np.ndarray:
        """Share of observed cells in each window, from a running sum (no window is materialised)."""
        per_day = np.concatenate([[0], np.cumsum((~np.isnan(self.values)).sum(axis=1))])
        return (per_day[starts + days] - per_day[starts]) / (days * len(self.channels))

    def person_of(self, starts: np.ndarray) -> np.ndarray:
        """Person index of each start row."""
        return np.searchsorted(self.offsets, starts, side="right") - 1

    def gather(self, starts: np.ndarray, days: int) -> np.ndarray:
        """(N, days, C) values of the windows starting at ``starts``."""
        return self.values[np.asarray(starts)[:, None] + np.arange(days)]

    def windows(self, starts: np.ndarray, days: int) -> Windows:
        """Windows with their persons and first dates, for evaluators."""
        person = self.person_of(starts)
        start_dates = self.first_date[person] + (starts - self.offsets[person]).astype("timedelta64[D]")
        attributes = None if self.attributes is None else self.attributes[person]
        return Windows(self.gather(starts, days), self.person_ids[person], start_dates, attributes)
