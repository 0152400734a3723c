"""Person-level train / validation / holdout splits that keep likely duplicate persons together.

Holdout persons are what evaluation and membership-inference attacks compare against, so a person
enrolled twice under two ids must not straddle the split: it would leak training data into the
holdout and inflate every privacy number.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from synthwear.errors import SynthwearError

MIN_SHARED_DAYS = 3  # identical multi-channel days two persons must share to be called one person


@dataclass
class PersonSplit:
    train: list[str]
    validation: list[str]
    holdout: list[str]
    duplicate_groups: list[list[str]] = field(default_factory=list)  # ids judged to be one person

    def to_dict(self) -> dict:
        return {
            "train": len(self.train),
            "validation": len(self.validation),
            "holdout": len(self.holdout),
            "duplicate_groups": self.duplicate_groups,
        }


def find_duplicate_persons(
    frame: pd.DataFrame, channels: list[str], min_shared_days: int = MIN_SHARED_DAYS
) -> list[list[str]]:
    """Groups of person ids that share at least ``min_shared_days`` identical days.

    A day counts only if at least two channels are observed and not all are zero, so that common
    values (a 0-step day, one shared resting HR) cannot make two strangers look like one person.
    """
    values = frame[channels]
    informative = (values.notna().sum(axis=1) >= min(2, len(channels))) & (values.fillna(0) != 0).any(axis=1)
    days = frame.loc[informative, ["person_id", "date", *channels]].fillna(-1.0)
    shared = days.merge(days, on=["date", *channels], suffixes=("", "_other"))
    shared = shared[shared["person_id"] < shared["person_id_other"]]
    counts = shared.groupby(["person_id", "person_id_other"]).size()
    pairs = counts[counts >= min_shared_days].index.tolist()

    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    for a, b in pairs:
        parent[root(b)] = root(a)
    groups: dict[str, list[str]] = {}
    for person in {p for pair in pairs for p in pair}:
        groups.setdefault(root(person), []).append(person)
    return sorted(sorted(g) for g in groups.values())


def person_groups(persons: list[str], duplicate_groups: list[list[str]] = ()) -> list[list[str]]:
    """The units a split deals out: each duplicate group (one person under several ids) whole, then
    every other person alone."""
    grouped = {p for g in duplicate_groups for p in g}
    groups = [sorted(g) for g in duplicate_groups if set(g) & set(persons)]
    return groups + [[p] for p in sorted(persons) if p not in grouped]


def person_folds(
    persons: list[str], folds: int, *, seed: int, duplicate_groups: list[list[str]] = ()
) -> list[list[str]]:
    """K folds of persons for cross-validation: groups shuffled with ``seed``, each dealt to the fold
    with the fewest persons so far, so that no person (nor a duplicate of one) spans two folds."""
    groups = person_groups(persons, duplicate_groups)
    if not 2 <= folds <= len(groups):
        raise SynthwearError(f"{folds} folds need between 2 and {len(groups)} (the persons with a usable window)")
    dealt: list[list[str]] = [[] for _ in range(folds)]
    for i in np.random.default_rng(seed).permutation(len(groups)):
        min(dealt, key=len).extend(groups[i])
    return [sorted(fold) for fold in dealt]


def split_persons(
    persons: list[str],
    *,
    validation: float,
    holdout: float,
    seed: int,
    duplicate_groups: list[list[str]] = (),
    source: str = "data",
    holdout_persons: list[str] | None = None,
) -> PersonSplit:
    """Shuffle groups of persons with ``seed`` and deal them into holdout, validation, then train.
    With ``holdout_persons`` (a cross-validation fold) those are the holdout, and the rest are dealt."""
    groups = person_groups(persons, duplicate_groups)
    if len(groups) < 3:
        twins = f" ({len(groups)} once those sharing identical days count as one)" if len(groups) < len(persons) else ""
        raise SynthwearError(
            f"{source}: {len(persons)} person(s) with a usable window{twins}, but a train/validation/holdout split "
            f"by person needs at least 3"
        )
    parts: dict[str, list[str]] = {"holdout": [], "validation": [], "train": []}
    n_holdout = max(1, round(holdout * len(persons)))
    if holdout_persons is not None:
        parts["holdout"], n_holdout = sorted(holdout_persons), 0
        groups = [g for g in groups if not set(g) & set(holdout_persons)]
    order = np.random.default_rng(seed).permutation(len(groups))
    n_validation = max(1, round(validation * len(persons)))
    remaining = len(groups)
    for i in order:
        remaining -= 1
        if len(parts["holdout"]) < n_holdout and remaining >= 2:
            parts["holdout"] += groups[i]
        elif len(parts["validation"]) < n_validation and remaining >= 1:
            parts["validation"] += groups[i]
        else:
            parts["train"] += groups[i]
    if not parts["train"]:
        raise SynthwearError(f"{source}: too few persons for the split: none left for training")
    return PersonSplit(
        sorted(parts["train"]), sorted(parts["validation"]), sorted(parts["holdout"]), [g for g in groups if len(g) > 1]
    )
