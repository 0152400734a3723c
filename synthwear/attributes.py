"""Per-person attributes (age group, gender, BMI, ...): a Gaussian copula that samples any conditions exactly.

Why a Gaussian copula: a researcher asks for "women over 30 with BMI 25–30", and every generated
person must meet that, not most of them. In a copula each column is a monotone map of one standard
normal coordinate, so a condition on any subset of columns is a box (or a union of boxes) in the
latent space; sampling the multivariate normal truncated to it and mapping back meets the condition
by construction, whatever columns are named. It fits in one pass (ranks, a K x K correlation),
holds ~30 columns and 100k persons in seconds, and its state is a few lists of floats.

- Numeric columns go through their empirical distribution: a piecewise-linear quantile function with
  knots at the midpoints between consecutive distinct values (thinned to MAX_KNOTS), so generated
  values are interpolated within the observed range instead of copied from real persons. Whole-number
  columns (every value whole, e.g. age) are generated as whole numbers.
- Categorical columns are consecutive intervals of their coordinate, one per category, with widths
  equal to their shares. Categories whose labels read as numbers or ranges are ordered by them
  ('<19' < '19.0' < ... < '>=30'), others by frequency.
- A column with missing values gets a second, two-state coordinate (observed / missing), so that
  missingness has its own dependence on the other columns. (Missing as one more category, or as the
  lowest values, would sit at one end of an ordered coordinate and pose as an extreme value: it
  halved a category's association with a number in the tests.) Missing is generated at its rate.
- The correlation is estimated on normal scores, pairwise over the persons where both are observed.
  A category's score is the mean of the normal over its interval, which understates the latent
  correlation; the latent one is recovered by matching the Hermite (Mehler) expansion of the scores'
  covariance exactly. It is then made positive definite and shrunk toward the identity by
  ``min(0.5, max(0.01, K / n))``, so that small tables (71 persons) give a well-conditioned model.
- Conditional sampling: only the constrained coordinates are sampled by Gibbs (each given the others
  is a univariate normal restricted to a union of intervals, drawn by inverse CDF), for
  ``GIBBS_SWEEPS`` sweeps from a feasible start; the free coordinates are then drawn exactly from the
  normal given the constrained ones. One constrained coordinate needs no Gibbs at all.

Limits: dependence is what a Gaussian copula can express (monotone, symmetric); a categorical column
relates to the others through its one ordered coordinate, so a many-category nominal column keeps its
shares exactly but only the part of its associations that that order captures. Values never leave the
observed range, whose ends (min and max) are real values kept in the model, as are rare categories
and the encode bins' quantiles: the model is not differentially private.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from synthwear.conditions import (
    Allowed,
    Conditions,
    Quota,
    attribute,
    find_category,
    label_interval,
    listing,
    quota_cells,
)
from synthwear.errors import SynthwearError, one_line, shown
from synthwear.tables import Place, table_place

MAX_LEVELS = 10  # a numeric column with at most this many distinct values is categorical (flags, scores 1-5)
ID_MIN, ID_SHARE = 20, 0.5  # a text column with more distinct values than both looks like an identifier
ID_FEW = 3  # ... and so does one whose every value is one person's, from this many persons on (copied otherwise)
MAX_KNOTS = 512  # knots of a numeric column's quantile function at most
BINS = 8  # quantile bins of a numeric column in ``encode``
GIBBS_SWEEPS = 20  # from the GHK start, converged by ~10 even at latent correlations of ~0.99 (tested)
HERMITE_TERMS = 30  # terms of the Mehler series matching the latent to the scores' correlation
Bounds = tuple[np.ndarray, np.ndarray]  # (1 or n, R) lower and upper ends of R intervals, per row
MISSING_TEXT = frozenset({"", "NA", "N/A", "NaN", "nan", "null", "NULL"})
FORMAT = "synthwear.attributes/1"


@dataclass
class Attribute:
    """One fitted column; only floats, strings and lists of them, so that it is stored as plain JSON."""

    name: str
    kind: str  # "numeric" or "categorical"
    missing: float  # share of persons without a value
    categories: list[str] = field(default_factory=list)  # categorical: in the order of the latent
    shares: list[float] = field(default_factory=list)  # categorical: each category's share of all persons
    knots_x: list[float] = field(default_factory=list)  # numeric: quantile function, values ...
    knots_p: list[float] = field(default_factory=list)  # ... at these cumulative probabilities
    integer: bool = False  # numeric: every value was whole, so generated values are too
    low: float | None = None  # numeric: the observed range
    high: float | None = None
    bins: list[float] = field(default_factory=list)  # numeric: inner edges of ``encode``'s quantile bins

    def continuous(self, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bounds on generated values as bounds on the value before rounding (whole numbers round half up)."""
        if not self.integer:
            return low, high
        return np.ceil(low) - 0.5, np.floor(high) + 0.5

    def latent(self, values: np.ndarray) -> np.ndarray:
        """Values to the latent normal; a finite value stays finite (the range's ends would be ±inf)."""
        p = np.interp(values, self.knots_x, self.knots_p)
        return ndtri(np.where(np.isfinite(values), np.clip(p, 1e-15, 1 - 1e-15), p))

    def values(self, latent: np.ndarray) -> np.ndarray:
        x = np.interp(ndtr(latent), self.knots_p, self.knots_x)
        return np.clip(np.floor(x + 0.5) if self.integer else x, self.low, self.high)


@dataclass(frozen=True)
class Dim:
    """A latent coordinate: a column's value (``probs`` None) or its discrete states."""

    column: int
    probs: np.ndarray | None = None

    @property
    def edges(self) -> np.ndarray:
        """The state intervals' bounds on the standard normal: -inf, cut points, +inf."""
        return np.concatenate([[-np.inf], ndtri(np.cumsum(self.probs)[:-1]), [np.inf]])


class Cells:
    """A user's column read once, each distinct value once (100k persons hold far fewer): its text (stripped;
    common spellings of missing become None) and its number (NaN where it is none)."""

    def __init__(self, column: pd.Series) -> None:
        self.codes, self.uniques = pd.factorize(column.reset_index(drop=True))  # missing: code -1
        if column.dtype.kind in "iuf":
            self.number = column.to_numpy(dtype=float)
            self.missing = np.isnan(self.number)
        else:
            numbers = pd.to_numeric(pd.Series(self.texts, dtype=object), errors="coerce").to_numpy(dtype=float)
            self.number = numbers[self.codes]
            self.missing = pd.isna(self.texts)[self.codes]

    @cached_property
    def texts(self) -> np.ndarray:
        """The text of each distinct value, then None (what code -1 picks)."""
        return np.array([*(cell_text(u) for u in self.uniques), None], dtype=object)

    @property
    def text(self) -> np.ndarray:
        return self.texts[self.codes]


class AttributeModel:
    """Fitted per-person attributes; ``sample``, ``sample_rows`` and ``encode`` are what the engine uses."""

    def __init__(
        self,
        attributes: list[Attribute],
        correlation: np.ndarray,
        *,
        dropped: dict[str, str],
        notes: list[str],
        persons: int,
        seed: int,
    ) -> None:
        self.attributes = attributes
        self.correlation = correlation
        self.dropped = dropped
        self.notes = notes
        self.persons = persons
        self.seed = seed  # the fit is deterministic (ranks, means); recorded so a run says what it was given
        self.dims = [d for i, att in enumerate(attributes) for d in dims_of(i, att)]
        self.coordinates = [[k for k, d in enumerate(self.dims) if d.column == i] for i in range(len(attributes))]

    @property
    def columns(self) -> list[str]:
        return [att.name for att in self.attributes]

    @property
    def code_sizes(self) -> list[int]:
        """How many codes each column's ``encode`` uses (missing, -1, not counted)."""
        return [len(att.categories) if att.kind == "categorical" else len(att.bins) + 1 for att in self.attributes]

    @classmethod
    def fit(cls, persons: pd.DataFrame, *, source: str = "the person table", seed: int = 0) -> AttributeModel:
        """Type each column, fit its margin, then the latent correlation; see the module docstring for the rules."""
        table = person_columns(persons, source)
        attributes, dropped, notes = [], {}, []
        for name, cells in table.items():
            refuse_infinite(name, cells, table_place(source))
            refuse_decimal_commas(name, cells, table_place(source))
            att, why = fit_attribute(name, cells)
            if att is None:
                dropped[name] = why
            else:
                attributes.append(att)
            notes.append(f"{name}: {why}" if att else f"{name}: dropped ({why})")
        if not attributes:
            raise SynthwearError(f"{source}: no column is left to model ({'; '.join(notes)})")
        model = cls(attributes, np.eye(1), dropped=dropped, notes=notes, persons=len(persons), seed=seed)
        scores = model.scores({a.name: table[a.name] for a in attributes}, table_place(source))
        model.correlation, shrink = latent_correlation(model.dims, scores)
        model.notes.append(
            f"correlation of {len(model.dims)} latent coordinates shrunk toward independence by {shrink:.2f}"
        )
        return model

    def scores(self, table: dict[str, Cells], place: Place) -> np.ndarray:
        """Each person's normal score on each latent coordinate (NaN where the value is missing)."""
        out = np.empty((len(next(iter(table.values())).codes), len(self.dims)))
        for i, att in enumerate(self.attributes):
            cells, ks = table[att.name], self.coordinates[i]
            if att.kind == "numeric":
                out[:, ks[0]] = rank_scores(cells.number)
            else:
                codes = category_codes(att, cells, place)
                out[:, ks[0]] = np.where(codes < 0, np.nan, interval_means(self.dims[ks[0]].probs)[codes])
            if len(ks) > 1:
                out[:, ks[1]] = interval_means(self.dims[ks[1]].probs)[cells.missing.astype(int)]
        return out

    def encode(self, frame: pd.DataFrame, *, source: str = "the person table", unseen: str = "error") -> np.ndarray:
        """Each person's attributes as small integer codes (N, K) for the sequence model: a category's index,
        or a numeric value's quantile bin; -1 where missing. Real and generated persons alike.
        ``unseen="missing"``: a category the model never saw (a real person outside the training persons
        whose value no training person had) or a non-number in a numeric column is coded as missing."""
        lenient = unseen == "missing"
        place, codes = table_place(source), np.empty((len(frame), len(self.attributes)), dtype=np.int64)
        for k, att in enumerate(self.attributes):
            if att.name not in frame.columns:
                raise SynthwearError(
                    f"{source}: missing column {att.name!r} (the model's columns: {', '.join(self.columns)})"
                )
            cells = Cells(frame[att.name])
            if att.kind == "categorical":
                codes[:, k] = category_codes(att, cells, place, lenient)
            else:
                numbers = cells.number if lenient else checked_numbers(att, cells, place)
                codes[:, k] = np.where(np.isnan(numbers), -1, np.searchsorted(att.bins, numbers, side="right"))
        return codes

    def sample(
        self, n: int, *, seed: int, where: Conditions | None = None, quotas: list[Quota] | None = None
    ) -> pd.DataFrame:
        """``n`` persons, each meeting ``where`` exactly; with quotas, exactly round(share x n) per quota group
        (largest remainder), rows shuffled so that groups do not come in blocks."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise SynthwearError(f"the number of persons must be a whole number >= 0, got {n!r}")
        base = where.check(self) if where is not None else {}
        cells = quota_cells(quotas, int(n), self, base) if quotas else [(base, int(n))]
        rng = generator(seed)
        parts = [self.generate(*self.allowed_bounds(allowed), count, rng) for allowed, count in cells]
        drawn = [part for part in parts if len(part)] or parts[:1]  # empty quota cells would set dtypes (pandas 3)
        frame = pd.concat(drawn, ignore_index=True) if drawn else self.generate({}, {}, 0, rng)
        return frame.iloc[rng.permutation(len(frame))].reset_index(drop=True) if len(parts) > 1 else frame

    def sample_rows(self, seed_table: pd.DataFrame, *, seed: int, source: str = "the seed table") -> pd.DataFrame:
        """One person per row of ``seed_table``, each meeting its own filled cells exactly; empty cells are sampled.
        A ``person_id`` column is carried through in front."""
        place, n = table_place(source), len(seed_table)
        unknown = [c for c in seed_table.columns if c != "person_id" and c not in self.columns]
        if unknown:
            attribute(self, str(unknown[0]), source)
        latent, out = {}, {}
        for name in seed_table.columns.intersection(self.columns, sort=False):
            i = self.columns.index(name)
            latent_i, out_i = self.row_bounds(i, Cells(seed_table[name]), place)
            latent.update(latent_i)
            out.update(out_i)
        frame = self.generate(latent, out, n, generator(seed))
        if "person_id" in seed_table.columns:
            frame.insert(0, "person_id", seed_table["person_id"].to_numpy())
        return frame

    def generate(
        self, latent: dict[int, Bounds], out: dict[int, Bounds], n: int, rng: np.random.Generator
    ) -> pd.DataFrame:
        """Draw the latent within ``latent`` bounds (per coordinate), map back, and hold numeric values within ``out``."""
        z = draw_latent(self.correlation, latent, n, rng)
        data = {}
        for i, att in enumerate(self.attributes):
            ks = self.coordinates[i]
            if att.kind == "categorical":
                state = np.searchsorted(self.dims[ks[0]].edges[1:-1], z[:, ks[0]], side="right")
                values = np.array(att.categories, dtype=object)[state]
            else:
                values = clamp(att.values(z[:, ks[0]]), *out[i]) if i in out else att.values(z[:, ks[0]])
            missing = z[:, ks[1]] >= self.dims[ks[1]].edges[1] if len(ks) > 1 else np.zeros(n, dtype=bool)
            data[att.name] = np.where(missing, np.nan, values)
        return pd.DataFrame(data, columns=self.columns).astype(
            {a.name: float for a in self.attributes if a.kind == "numeric"}
        )

    def allowed_bounds(self, allowed: dict[str, Allowed]) -> tuple[dict[int, Bounds], dict[int, Bounds]]:
        """Checked conditions as bounds: on latent coordinates (a union of intervals each) and on numeric values.
        A column with a condition has a value (its missing coordinate says "observed"), unless the condition
        allows missing (the rest of a quota)."""
        latent, out = {}, {}
        for name, want in allowed.items():
            i = self.columns.index(name)
            att, ks = self.attributes[i], self.coordinates[i]
            if want.categories:
                latent[ks[0]] = runs(self.dims[ks[0]].edges, [att.categories.index(c) for c in want.categories])
            elif want.intervals:
                out[i] = tuple(np.array([[iv[j] for iv in want.intervals]]) for j in (0, 1))
                latent[ks[0]] = tuple(att.latent(b) for b in att.continuous(*out[i]))
            states = [1] if want.missing and not (want.categories or want.intervals) else [] if want.missing else [0]
            if len(ks) > 1 and states:
                latent[ks[1]] = runs(self.dims[ks[1]].edges, states)
        return latent, out

    def row_bounds(self, i: int, cells: Cells, place: Place) -> tuple[dict[int, Bounds], dict[int, Bounds]]:
        """A seed table's column as per-row bounds: filled cells fix the value, empty ones leave it free."""
        att, ks = self.attributes[i], self.coordinates[i]
        filled = ~cells.missing[:, None]
        free = np.full(filled.shape, np.inf)
        out = {}
        if att.kind == "categorical":
            edges, codes = self.dims[ks[0]].edges, category_codes(att, cells, place)[:, None]
            latent = {ks[0]: (np.where(filled, edges[codes], -free), np.where(filled, edges[codes + 1], free))}
        else:
            numbers = generated_numbers(att, cells, place)[:, None]
            out[i] = (np.where(filled, numbers, -free), np.where(filled, numbers, free))
            latent = {ks[0]: tuple(att.latent(b) for b in att.continuous(*out[i]))}
        if len(ks) > 1:
            latent[ks[1]] = (-free, np.where(filled, self.dims[ks[1]].edges[1], free))
        return latent, out

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (floats, strings, lists): a model file never runs code, unlike a pickle."""
        return {
            "format": FORMAT,
            "persons": self.persons,
            "seed": self.seed,
            "attributes": [asdict(att) for att in self.attributes],
            "correlation": self.correlation.tolist(),
            "dropped": dict(self.dropped),
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AttributeModel:
        try:
            if data.get("format") != FORMAT:
                raise ValueError(f"format is {data.get('format')!r}, expected {FORMAT!r}")
            attributes = [Attribute(**att) for att in data["attributes"]]
            correlation = np.array(data["correlation"], dtype=float)
            model = cls(
                attributes,
                correlation,
                dropped=dict(data["dropped"]),
                notes=list(data["notes"]),
                persons=int(data["persons"]),
                seed=int(data["seed"]),
            )
            if correlation.shape != (len(model.dims), len(model.dims)):
                raise ValueError(f"the correlation is {correlation.shape}, expected {len(model.dims)} square")
        except (AttributeError, KeyError, TypeError, ValueError) as err:
            raise SynthwearError(f"attribute model: not a saved model ({one_line(err)})") from None
        return model


# --- reading and typing columns -------------------------------------------------------------------


def person_columns(persons: pd.DataFrame, source: str) -> dict[str, Cells]:
    """Check the person table (unique, non-empty ``person_id``; another column) and read its other columns."""
    if not isinstance(persons, pd.DataFrame):
        raise SynthwearError(f"{source}: a person table is a table (DataFrame), got {type(persons).__name__}")
    names = [str(c) for c in persons.columns]
    twice = sorted({c for c in names if names.count(c) > 1})
    if twice:
        raise SynthwearError(f"{source}: column {twice[0]!r} appears more than once")
    if "person_id" not in names:
        raise SynthwearError(f"{source}: missing column 'person_id' (columns present: {', '.join(map(repr, names))})")
    if len(names) < 2:
        raise SynthwearError(f"{source}: no attribute column besides 'person_id'")
    frame = persons.reset_index(drop=True)
    ids = Cells(frame["person_id"]).text
    place = table_place(source)
    if pd.isna(ids).any():
        raise place.error(int(np.argmax(pd.isna(ids))), "person_id", "no person id")
    repeated = pd.Series(ids).duplicated()
    if repeated.any():
        row = int(np.argmax(repeated))
        raise place.error(row, "person_id", f"{shown(ids[row])} appears more than once; one row per person")
    return {str(c): Cells(frame[c]) for c in frame.columns if c != "person_id"}


def cell_text(value: Any) -> str | None:
    if isinstance(value, str):
        value = value.strip()
        return None if value in MISSING_TEXT else value
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (int, float, np.number)) and not isinstance(value, (bool, np.bool_)):
        return format(float(value), ".15g")
    return str(value)


def refuse_infinite(name: str, cells: Cells, place: Place) -> None:
    """A number beyond what a float holds ('inf', '1e400'): one such cell would type a column of
    numbers as categorical, a category per value, in silence."""
    infinite = np.array([beyond_float(text) for text in cells.texts])[cells.codes]  # once per distinct value
    if infinite.any():
        row = int(np.argmax(infinite))
        raise place.error(row, name, f"{shown(cells.text[row])} is not a finite number")


DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+")


def refuse_decimal_commas(name: str, cells: Cells, place: Place) -> None:
    """A column of numbers some of which are written with a comma ('20,5', or '1,000' with a thousands
    separator): read as text, they would type the column as categorical, a category per value, in
    silence; which of the two a comma means is a guess, so the user is asked to write a point."""
    words = ~cells.missing & np.isnan(cells.number)  # the cells that are no number (a column of text: all)
    if words.any() and all(DECIMAL_COMMA.fullmatch(text) for text in np.unique(cells.text[words].astype(str))):
        row = int(np.argmax(words))
        raise place.error(
            row, name, f"{shown(cells.text[row])} is a number written with a comma; write 20.5, not 20,5 or 1,000"
        )


def beyond_float(text: str | None) -> bool:
    """Whether the text is a number too large for a float (pandas reads '1e400' as not a number)."""
    try:
        return math.isinf(float(text))
    except (TypeError, ValueError):
        return False


def fit_attribute(name: str, cells: Cells) -> tuple[Attribute | None, str]:
    """The typing rules: numeric when every value is a finite number and there are more than MAX_LEVELS
    distinct ones (or, from ID_FEW persons on, every number is one person's); otherwise categorical,
    unless nothing is observed, one value never varies, or the text looks like an identifier. Returns
    the attribute (None: dropped) and a note saying why."""
    observed = ~cells.missing
    n_obs = int(observed.sum())
    if n_obs == 0:
        return None, "every value is missing"
    numeric = bool(np.isfinite(cells.number[observed]).all())
    if numeric:
        values, counts = np.unique(cells.number[observed], return_counts=True)
        # a few persons' own numbers (each BMI once) as categories would be copied as they are
        if len(values) > MAX_LEVELS or (n_obs >= ID_FEW and (counts == 1).all()):
            return numeric_attribute(name, cells.number[observed], len(cells.codes))
        distinct = np.array([format(v, ".15g") for v in values])
    else:
        distinct, counts = np.unique(cells.text[observed].astype(str), return_counts=True)
    if len(distinct) == 1 and n_obs == len(cells.codes):
        return None, f"one value only ({str(distinct[0])!r})"
    if not numeric and len(distinct) > max(ID_MIN, ID_SHARE * n_obs):
        return None, f"{len(distinct)} distinct values among {n_obs} persons look like an identifier or free text"
    if not numeric and n_obs >= ID_FEW and (counts == 1).all():  # a name or e-mail column of a small cohort
        return None, f"each of the {n_obs} persons has a value of their own: an identifier, not a category"
    return categorical_attribute(name, dict(zip(distinct.tolist(), counts.tolist())), len(cells.codes), numeric)


def numeric_attribute(name: str, values: np.ndarray, n: int) -> tuple[Attribute, str]:
    """The quantile function has a knot between each two neighbouring values (whole numbers: one per value),
    thinned to MAX_KNOTS evenly spaced probabilities where there are more, so that the model neither grows
    with the table nor keeps a near copy of every person's value."""
    distinct, counts = np.unique(values, return_counts=True)
    integer = bool((distinct == np.round(distinct)).all())
    pad = 0.5 if integer else 0.0  # whole numbers: value v owns [v - 0.5, v + 0.5) before rounding
    knots_x = np.array([distinct[0] - pad, *((distinct[:-1] + distinct[1:]) / 2), distinct[-1] + pad])
    knots_p = np.array([0.0, *(np.cumsum(counts)[:-1] / len(values)), 1.0])
    if len(knots_p) > MAX_KNOTS:
        knots_p, knots_x = np.linspace(0, 1, MAX_KNOTS), np.interp(np.linspace(0, 1, MAX_KNOTS), knots_p, knots_x)
    bins = np.unique(np.quantile(values, np.arange(1, BINS) / BINS))
    att = Attribute(
        name, "numeric", 1 - len(values) / n, knots_x=[float(x) for x in knots_x], knots_p=[float(p) for p in knots_p],
        integer=integer, low=float(distinct[0]), high=float(distinct[-1]), bins=bins.tolist(),
    )  # fmt: skip
    whole = "whole numbers " if integer else ""
    return (
        att,
        f"numeric, {whole}from {att.low:g} to {att.high:g} ({len(distinct)} distinct values), {att.missing:.0%} missing",
    )


def categorical_attribute(name: str, counts: dict[str, int], n: int, numeric: bool) -> tuple[Attribute, str]:
    """Categories ordered by the numbers their labels stand for ('<19' < '19.0' < '>=25'), the rest by frequency."""

    def order(label: str) -> tuple:
        span = label_interval(label)
        return (0, *span, label) if span else (1, -counts[label], 0.0, label)

    categories = sorted(counts, key=order)
    shares = [counts[c] / n for c in categories]
    att = Attribute(name, "categorical", 1 - sum(counts.values()) / n, categories=categories, shares=shares)
    spans = [label_interval(c) for c in categories]
    if numeric:
        why = f" (numbers with at most {MAX_LEVELS} distinct values)"
    elif any(s and s[0] != s[1] for s in spans):
        why = " (labels stand for numbers or ranges, such as " + listing(
            [c for c, s in zip(categories, spans) if s and s[0] != s[1]], 3
        )
        why += "; numeric conditions select the categories wholly within them)"
    else:
        why = ""
    return att, f"categorical, {len(categories)} categories{why}, {att.missing:.0%} missing"


def category_codes(att: Attribute, cells: Cells, place: Place, lenient: bool = False) -> np.ndarray:
    """Each value's category index (-1 where missing); a value that is no category is an error naming its
    row (``lenient``: coded as missing)."""
    index = {c: i for i, c in enumerate(att.categories)}
    found = [None if t is None else find_category(att.categories, t) for t in cells.texts]
    unknown = [u for u, (t, f) in enumerate(zip(cells.texts, found)) if t is not None and f is None]
    if unknown and not lenient:
        row = int(np.argmax(np.isin(cells.codes, unknown)))
        seen = listing(att.categories)
        raise place.error(row, att.name, f"{cells.text[row]!r} is not a category the model has seen (seen: {seen})")
    return np.array([-1 if f is None else index[f] for f in found], dtype=np.int64)[cells.codes]


def checked_numbers(att: Attribute, cells: Cells, place: Place) -> np.ndarray:
    bad = ~cells.missing & ~np.isfinite(cells.number)
    if bad.any():
        row = int(np.argmax(bad))
        raise place.error(row, att.name, f"{cells.text[row]!r} is not a number (the column is numeric)")
    return cells.number


def generated_numbers(att: Attribute, cells: Cells, place: Place) -> np.ndarray:
    """A seed table's numbers, each one the model can generate (in range; whole where the column is)."""
    numbers = checked_numbers(att, cells, place)
    off = (numbers < att.low) | (numbers > att.high) | (att.integer & (np.abs(numbers - np.round(numbers)) > 0))
    if off.any():
        row, kind = int(np.argmax(off)), "whole numbers " if att.integer else ""
        raise place.error(
            row,
            att.name,
            f"{numbers[row]:g} is not among the values the model generates ({kind}from {att.low:g} to {att.high:g})",
        )
    return numbers


def dims_of(i: int, att: Attribute) -> list[Dim]:
    """A column's coordinates: its value (numeric) or category (shares among the persons who have one), then,
    if it has missing values, whether it is observed: missingness gets its own dependence on the others."""
    value = Dim(i) if att.kind == "numeric" else Dim(i, np.array(att.shares) / sum(att.shares))
    return [value] + ([Dim(i, np.array([1 - att.missing, att.missing]))] if att.missing > 0 else [])


# --- the latent correlation -------------------------------------------------------------------------


def rank_scores(values: np.ndarray) -> np.ndarray:
    """Van der Waerden scores: the normal quantile of each value's (average) rank; NaN stays NaN."""
    ranks = pd.Series(values).rank(method="average").to_numpy()
    return ndtri(ranks / (np.isfinite(values).sum() + 1))


def interval_means(probs: np.ndarray) -> np.ndarray:
    """E[Z | Z in state s] for a standard normal cut into states with these probabilities."""
    density = np.exp(-0.5 * Dim(0, probs).edges ** 2) / math.sqrt(2 * math.pi)
    return (density[:-1] - density[1:]) / probs


def hermite_coefficients(dim: Dim) -> tuple[np.ndarray, float]:
    """A coordinate's score as a function of its latent normal, in normalised Hermite polynomials
    (coefficients 1..HERMITE_TERMS), and the score's standard deviation. A value's score is the normal itself."""
    if dim.probs is None:
        return np.eye(HERMITE_TERMS)[0], 1.0
    edges, means = dim.edges, interval_means(dim.probs)
    finite = np.where(np.isfinite(edges), edges, 0.0)
    density = np.where(np.isfinite(edges), np.exp(-0.5 * finite**2) / math.sqrt(2 * math.pi), 0.0)
    h_before, h = np.zeros_like(finite), np.ones_like(finite)  # h_{k-2}, h_{k-1} at the edges
    coefficients = np.empty(HERMITE_TERMS)
    for k in range(1, HERMITE_TERMS + 1):
        g = h * density  # ∫ over a state of He_k φ = [He_{k-1} φ] at its lower minus its upper edge
        coefficients[k - 1] = np.sum(means * (g[:-1] - g[1:])) / math.sqrt(k)
        h_before, h = h, (finite * h - math.sqrt(k - 1) * h_before) / math.sqrt(k)
    return coefficients, float(np.sqrt(np.sum(dim.probs * means**2)))


def pairwise_correlation(scores: np.ndarray) -> np.ndarray:
    """Pearson correlations over the rows where both columns are observed (0 where that is undefined)."""
    mask = np.isfinite(scores).astype(float)
    z = np.where(mask > 0, scores, 0.0)
    d = scores.shape[1]
    products = np.ascontiguousarray(np.hstack([z, z**2, mask]).T) @ np.hstack([mask, z])  # one pass over the rows
    count = products[2 * d :, :d]
    with np.errstate(divide="ignore", invalid="ignore"):
        sums, squares = products[:d, :d] / count, products[d : 2 * d, :d] / count
        cov = products[:d, d:] / count - sums * sums.T
        corr = cov / np.sqrt((squares - sums**2) * (squares - sums**2).T)
    return np.where(np.isfinite(corr) & (count > 2), np.clip(corr, -1, 1), 0.0)


def latent_correlation(dims: list[Dim], scores: np.ndarray) -> tuple[np.ndarray, float]:
    """The latent correlation whose implied score correlations match the observed ones (bisection on the
    monotone Mehler series), made positive definite and shrunk; returns it and the shrinkage used."""
    pairs = [hermite_coefficients(d) for d in dims]
    coefficients = np.array([c for c, _ in pairs])
    spread = np.array([s for _, s in pairs])
    target = pairwise_correlation(scores) * np.outer(spread, spread)
    weights = np.einsum("ik,jk->ijk", coefficients, coefficients)
    powers = np.arange(1, HERMITE_TERMS + 1)
    low, high = np.full(target.shape, -0.999), np.full(target.shape, 0.999)
    for _ in range(40):
        middle = (low + high) / 2
        above = np.sum(middle[..., None] ** powers * weights, axis=-1) > target
        low, high = np.where(above, low, middle), np.where(above, middle, high)
    latent = (low + high) / 2
    np.fill_diagonal(latent, 1.0)
    values, vectors = np.linalg.eigh((latent + latent.T) / 2)
    latent = (vectors * np.maximum(values, 1e-6)) @ vectors.T
    scale = np.sqrt(np.diag(latent))
    shrink = min(0.5, max(0.01, len(dims) / len(scores)))
    return (1 - shrink) * latent / np.outer(scale, scale) + shrink * np.eye(len(dims)), shrink


# --- sampling ----------------------------------------------------------------------------------------


def generator(seed: int) -> np.random.Generator:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SynthwearError(f"the seed must be a whole number >= 0, got {seed!r}")
    return np.random.default_rng(int(seed))


def runs(edges: np.ndarray, states: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Allowed states as maximal runs of neighbours, each one latent interval: bounds of shape (1, runs)."""
    states = sorted(states)
    starts = [s for s in states if s - 1 not in states]
    ends = [s for s in states if s + 1 not in states]
    return np.array([[edges[s] for s in starts]]), np.array([[edges[e + 1] for e in ends]])


def draw_latent(correlation: np.ndarray, bounds: dict[int, Bounds], n: int, rng: np.random.Generator) -> np.ndarray:
    """Standard normals with this correlation, each constrained coordinate within its union of intervals
    (bounds (1 or n, R) per coordinate): Gibbs over the constrained ones, then the rest given them, exactly."""
    held = sorted(bounds)
    free = [k for k in range(len(correlation)) if k not in bounds]
    inner = correlation[np.ix_(held, held)]
    z = np.empty((n, len(correlation)))
    if held:
        z[:, held] = gibbs(inner, [bounds[k] for k in held], n, rng)
    if free:
        link = np.linalg.solve(inner, correlation[np.ix_(held, free)]).T if held else np.zeros((len(free), 0))
        spread = correlation[np.ix_(free, free)] - link @ correlation[np.ix_(held, free)]
        factor = np.linalg.cholesky(spread + 1e-10 * np.eye(len(free)))
        z[:, free] = z[:, held] @ link.T + rng.standard_normal((n, len(free))) @ factor.T
    return z


def gibbs(inner: np.ndarray, bounds: list[Bounds], n: int, rng: np.random.Generator) -> np.ndarray:
    """The constrained coordinates: a feasible start that already follows their correlation (the GHK draw,
    one coordinate at a time given the ones before), then Gibbs sweeps, each coordinate given all the others."""
    factor, precision = np.linalg.cholesky(inner), np.linalg.inv(inner)
    bounded = [np.isfinite(low).any(axis=1) | np.isfinite(high).any(axis=1) for low, high in bounds]
    z, noise = np.zeros((n, len(bounds))), np.zeros((n, len(bounds)))
    for j, (low, high) in enumerate(bounds):
        mean = noise[:, :j] @ factor[j, :j]
        z[:, j] = draw(mean, factor[j, j], low, high, bounded[j], rng)
        noise[:, j] = (z[:, j] - mean) / factor[j, j]
    for _ in range(GIBBS_SWEEPS if len(bounds) > 1 else 0):
        for j, (low, high) in enumerate(bounds):
            rest = z @ precision[:, j] - z[:, j] * precision[j, j]
            z[:, j] = draw(-rest / precision[j, j], 1 / math.sqrt(precision[j, j]), low, high, bounded[j], rng)
    return z


def draw(
    mean: np.ndarray, sd: float, low: np.ndarray, high: np.ndarray, bounded: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """A normal draw per row, restricted (``within``) only in the rows whose bounds say something: a seed
    table leaves most cells free."""
    if bounded.all():
        return within(mean, sd, low, high, rng)
    out = mean + sd * rng.standard_normal(len(mean))
    rows = np.flatnonzero(np.broadcast_to(bounded, mean.shape))
    if len(rows):
        out[rows] = within(mean[rows], sd, low[rows], high[rows], rng)
    return out


def within(mean: np.ndarray, sd: float, low: np.ndarray, high: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """N(mean, sd²) restricted to a union of intervals (low, high: (1 or n, R)), by inverse CDF: pick an
    interval by its mass, then a point in it. An interval above the mean is mirrored below it, where the
    normal CDF keeps its precision; where every interval has ~no mass the nearest allowed point is taken.
    The result is inside an interval by construction, whatever the rounding."""
    n = len(mean)
    low, high = np.broadcast_to(low, (n, low.shape[1])), np.broadcast_to(high, (n, high.shape[1]))
    a, b = (low - mean[:, None]) / sd, (high - mean[:, None]) / sd
    flip = a > 0
    a, b = np.where(flip, -b, a), np.where(flip, -a, b)
    start = ndtr(a)
    mass = ndtr(b) - start
    k = np.zeros(n, dtype=np.int64)
    if low.shape[1] > 1:
        cumulative = np.cumsum(mass, axis=1)
        k = np.minimum((cumulative < rng.random(n)[:, None] * cumulative[:, -1:]).sum(axis=1), low.shape[1] - 1)
        k = np.where(cumulative[:, -1] > 0, k, np.abs(np.clip(0.0, a, b)).argmin(axis=1))
    a, b, start, mass, flip, low, high = (
        v[:, 0] if v.shape[1] == 1 else np.take_along_axis(v, k[:, None], axis=1)[:, 0]
        for v in (a, b, start, mass, flip, low, high)
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        x = ndtri(start + rng.random(n) * mass)
    x = np.where(np.isfinite(x) & (mass > 0), x, np.clip(0.0, a, b))
    top = np.where(high > low, np.nextafter(high, -np.inf), high)  # a category's upper edge belongs to the next
    return np.clip(mean + sd * np.where(flip, -x, x), low, top)


def clamp(values: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Numeric values into the nearest allowed interval: a guard against rounding at the bounds (moves ~1 ulp)."""
    low, high = np.broadcast_to(low, (len(values), low.shape[1])), np.broadcast_to(high, (len(values), high.shape[1]))
    distance = np.maximum(low - values[:, None], 0) + np.maximum(values[:, None] - high, 0)
    k = np.nan_to_num(distance, nan=np.inf).argmin(axis=1)[:, None]
    return np.clip(values, np.take_along_axis(low, k, axis=1)[:, 0], np.take_along_axis(high, k, axis=1)[:, 0])
