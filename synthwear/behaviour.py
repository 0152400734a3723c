"""Conditions on what a person's days do (``mean(sleep_minutes) < 300``), met by rejection sampling.

A statistic over generated days cannot be imposed on the model as it draws day by day, so each
person is drawn as usual and, while their days miss a condition, their days are drawn again, for
the same attributes, first day and primed days: the cohort keeps its size, its attribute conditions
and its quotas exactly, and every person meets every condition. How often drawn persons met the
conditions (the acceptance rate) is reported; when it is so low that the cohort would need more
than ``MAX_DRAWS`` draws per person (under 1% once ``EVIDENCE`` persons were drawn, or all the
draws spent), sampling stops with an error that gives the rate, instead of running for hours. A
missing value never meets a condition (as with attributes): a person whose channel has no observed
day is drawn again.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from synthwear.conditions import Allowed, Condition, Conditions, numeric_set
from synthwear.errors import SynthwearError

MAX_DRAWS = 100  # persons drawn per person asked for, at most: an acceptance rate under 1% is refused
EVIDENCE = 1000  # persons drawn before a rate under 1 / MAX_DRAWS stops sampling (not hours later)
PER_PERSON = ("prime", "start", "attributes")  # generate options that hold one row per person


def statistic(name: str, values: np.ndarray) -> np.ndarray:
    """(n, days) values -> (n,) the statistic over each person's observed days (NaN where none is)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a person with no observed day: NaN, never met
        if name == "sd":
            return np.nanstd(values, axis=1, ddof=1)
        return {"mean": np.nanmean, "median": np.nanmedian, "min": np.nanmin, "max": np.nanmax}[name](values, axis=1)


@dataclass(frozen=True)
class DayCondition:
    """One condition on a channel's statistic, resolved to the numbers that meet it."""

    condition: Condition
    channel: int
    allowed: Allowed

    def met(self, values: np.ndarray) -> np.ndarray:
        """(n, days, C) -> (n,) whether each person's days meet the condition."""
        name, _ = self.condition.statistic
        stat = statistic(name, values[:, :, self.channel])
        return np.logical_or.reduce([(low <= stat) & (stat <= high) for low, high in self.allowed.intervals])


def day_conditions(
    conditions: Conditions | None,
    channels: list[str],
    ranges: list[tuple[float, float]] | None = None,
    days: int | None = None,
) -> list[DayCondition]:
    """The conditions on days, checked against the model's channels (and their ``ranges``, which every
    generated value lies in, and the ``days`` each person gets) before anything is drawn or trained:
    ``mean(steps) > 100000`` on a range of 0..40000, or an ``sd`` over one day, is refused here, not
    after every draw has missed it."""
    resolved = []
    for cond in conditions.on_days() if conditions else []:
        _, channel = cond.statistic
        if channel not in channels:
            raise SynthwearError(f"{cond.said}: {channel!r} is not a channel (channels: {', '.join(channels)})")
        intervals = Allowed(intervals=((-np.inf, np.inf),))
        for op, values in cond.clauses:
            if any(isinstance(v, str) for v in values):
                raise SynthwearError(f"{cond.said}: a statistic of a channel is a number; compare it with numbers")
            intervals = intervals & Allowed(intervals=numeric_set(op, values))
        if not intervals:
            raise SynthwearError(f"{cond.said}: no number meets it")
        c = channels.index(channel)
        if days is not None and days < 2 and cond.statistic[0] == "sd":
            raise SynthwearError(f"{cond.said}: a standard deviation needs at least 2 days per person, not {days}")
        if ranges and cond.statistic[0] != "sd" and not intervals & Allowed(intervals=(tuple(ranges[c]),)):
            low, high = ranges[c]
            raise SynthwearError(f"{cond.said}: no person can meet it; every {channel} value lies in {low:g}..{high:g}")
        resolved.append(DayCondition(cond, c, intervals))
    return resolved


@dataclass
class Acceptance:
    """Persons drawn and persons kept: what rejection sampling cost."""

    kept: int = 0
    drawn: int = 0

    @property
    def rate(self) -> float:
        return self.kept / self.drawn if self.drawn else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {"kept": self.kept, "drawn": self.drawn, "acceptance_rate": self.rate}

    def line(self, conditions: list[DayCondition]) -> str:
        said = " and ".join(repr(c.condition.text) for c in conditions)
        return f"{said}: acceptance rate {self.rate:.1%} ({self.kept:,} persons kept of {self.drawn:,} drawn)"


def meets_all(conditions: list[DayCondition], values: np.ndarray) -> np.ndarray:
    return np.logical_and.reduce([c.met(values) for c in conditions]) if conditions else np.ones(len(values), bool)


def too_rare(tally: Acceptance) -> bool:
    """Enough persons drawn to tell that the rate is under 1 / MAX_DRAWS."""
    return tally.drawn >= EVIDENCE and tally.rate < 1 / MAX_DRAWS


def batches_meeting(
    model: Any,
    conditions: list[DayCondition],
    n: int,
    days: int,
    *,
    seed: int,
    tally: Acceptance | None = None,
    **options: Any,
) -> Iterator[np.ndarray]:
    """``model.generate_batches(n, days, seed=seed, **options)``, each batch's persons who miss a
    condition drawn again (with seeds of their own) until all meet them; ``tally`` counts the draws."""
    tally = tally if tally is not None else Acceptance()
    if conditions and options.get("start") is None:  # a person drawn again keeps their first day
        options["start"] = model.first_days(n, seed)
    first = 0
    for values in model.generate_batches(n, days, seed=seed, **options):
        if conditions:
            redraw_until_met(model, conditions, values, first, days, seed, options, tally)
        first += len(values)
        yield values


def redraw_until_met(
    model: Any,
    conditions: list[DayCondition],
    values: np.ndarray,
    first: int,
    days: int,
    seed: int,
    options: dict[str, Any],
    tally: Acceptance,
) -> None:
    """Draw again, in place, the persons of ``values`` (persons ``first ..`` of the cohort) who miss a condition."""
    missing = ~meets_all(conditions, values)
    tally.drawn += len(values)
    tally.kept += int((~missing).sum())
    attempt = 0
    while missing.any():
        if tally.drawn >= MAX_DRAWS * (first + len(values)) or too_rare(tally):
            raise SynthwearError(
                f"{tally.line(conditions)}: too low to finish within {MAX_DRAWS} draws per person; relax the "
                "condition (or ask for what the model generates more often)"
            )
        attempt += 1
        rows = np.flatnonzero(missing)
        again = {k: v[first + rows] for k, v in options.items() if k in PER_PERSON and v is not None}
        rest = {k: v for k, v in options.items() if k not in PER_PERSON and k not in ("on_progress", "batch_size")}
        seed_again = int(np.random.SeedSequence([seed, first, attempt]).generate_state(1)[0])
        values[rows] = model.generate(len(rows), days, seed=seed_again, **again, **rest)
        met = meets_all(conditions, values[rows])
        missing[rows[met]] = False
        tally.drawn += len(rows)
        tally.kept += int(met.sum())
