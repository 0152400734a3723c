"""The condition language: whom to generate (``--where``), in what proportions (quotas).

A condition comes from a command line or a file, so it is read by a small tokenizer and a fixed
grammar, never by ``eval``. Conditions are checked against a fitted ``AttributeModel`` before any
sampling, and resolve to the set of values each named column may take (``Allowed``); the model
turns those sets into constraints on its latent space and samples them exactly.

Semantics, decided once:

- Missing never satisfies a condition (as in SQL): ``gender != 'male'`` keeps the persons whose
  gender is known and not male. A column named in a condition is always generated with a value.
- Several conditions combine with AND; two on one column intersect (an empty intersection is an
  error, not an empty cohort).
- A numeric bound outside the range the model was fitted on is accepted when it still leaves some
  values (``age >= 0``); a condition no fitted value can meet (``age >= 200``) is an error, since a
  copula never extrapolates beyond the values it saw.
- Numbers compared with a categorical column select the categories whose label *wholly* lies in
  the condition: labels read as numbers or ranges (``'23.0'``, ``'<19'``, ``'>=25'``, ``'20-25'``,
  ``'65+'``), so ``25 <= bmi < 30`` keeps ``'25.0'`` … ``'29.0'`` but not ``'>=25'``, which could
  be 31. Every generated person then meets the condition whatever their label stands for.
- A condition on a statistic of a channel over a person's days (``mean(sleep_minutes) < 300``;
  ``STATISTICS``) is not an attribute: it is met by drawing again the days of each person who misses
  it (``synthwear.behaviour``), for the same attributes, so that quotas stay exact.
- Quotas name categories of categorical columns. Shares on one column sum to at most 1; the named
  categories get exactly their share of the cohort, and the rest of the cohort (when the shares
  sum to less than 1) takes any *other* value of that column, missing included (at the model's rate of
  missing among those persons; only missing when the quotas name every category). Quotas on several
  columns are crossed as if independent (cell share = product of shares), so each column's counts
  are exact up to the rounding of the cells.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from synthwear.errors import SynthwearError, one_line
from synthwear.recipe import StrictLoader

if TYPE_CHECKING:
    from synthwear.attributes import Attribute, AttributeModel

FORMS = (
    "accepted forms: column == 'text', column != 'text', column in ['a', 'b'], column not in ['a', 'b'], "
    "column >= 25 (also <, <=, >, ==, != with a number), 25 <= column < 30, and on a channel over a person's "
    "days mean(channel) < 300 (also median, min, max, sd); "
    "quote text values, write `odd name` for a column name with spaces"
)
STATISTICS = ("mean", "median", "min", "max", "sd")  # of a channel over a person's days: mean(steps) >= 8000
STATISTIC = re.compile(rf"({'|'.join(STATISTICS)})\((.+)\)")
ORDERINGS = ("<", "<=", ">", ">=")
FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
INF = math.inf

TOKEN = re.compile(
    r"""(?P<number>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
      |(?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      |(?P<name>[A-Za-z_][A-Za-z0-9_.]*|`[^`]+`)
      |(?P<op>==|!=|<=|>=|<|>|=)
      |(?P<punct>[\[\](),])""",
    re.VERBOSE,
)
NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
LABEL_FORMS = (
    (re.compile(rf"({NUMBER})"), lambda a, b: (a, a)),
    (re.compile(rf"<\s*({NUMBER})"), lambda a, b: (-INF, math.nextafter(a, -INF))),
    (re.compile(rf"<=\s*({NUMBER})"), lambda a, b: (-INF, a)),
    (re.compile(rf">\s*({NUMBER})"), lambda a, b: (math.nextafter(a, INF), INF)),
    (re.compile(rf">=\s*({NUMBER})"), lambda a, b: (a, INF)),
    (re.compile(rf"({NUMBER})\s*\+"), lambda a, b: (a, INF)),
    (re.compile(rf"({NUMBER})\s*(?:-|–|to)\s*({NUMBER})"), lambda a, b: (a, b)),
)

Value = str | float
Intervals = tuple[tuple[float, float], ...]  # a union of closed intervals


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    value: Value | None = None


@dataclass(frozen=True)
class Condition:
    """One parsed ``--where``: a column and the clauses (operator, operands) it must meet, all of them."""

    column: str
    clauses: tuple[tuple[str, tuple[Value, ...]], ...]
    text: str
    origin: str = "--where"  # where it was written (an option, a recipe's field), for messages

    @property
    def said(self) -> str:
        return f"{self.origin} {self.text!r}"

    @property
    def statistic(self) -> tuple[str, str] | None:
        """(statistic, channel) for a condition on a person's days (``mean(steps) >= 8000``), else None."""
        match = STATISTIC.fullmatch(self.column)
        return (match.group(1), match.group(2)) if match else None


@dataclass(frozen=True)
class Allowed:
    """The values a column may take: categories (categorical) or a union of closed intervals (numeric)."""

    categories: frozenset[str] | None = None
    intervals: Intervals = ()
    missing: bool = False

    def __and__(self, other: Allowed) -> Allowed:
        if self.categories is not None and other.categories is not None:
            return Allowed(self.categories & other.categories, missing=self.missing and other.missing)
        pieces = tuple((max(a, c), min(b, d)) for a, b in self.intervals for c, d in other.intervals)
        return Allowed(intervals=tuple(p for p in pieces if p[0] <= p[1]), missing=self.missing and other.missing)

    def __bool__(self) -> bool:
        return bool(self.categories or self.intervals or self.missing)


# --- parsing -------------------------------------------------------------------------------------


def parse_where(text: str, origin: str = "--where") -> Condition:
    """Parse one condition; anything else is a one-line ``SynthwearError`` naming where it was written
    (``origin``: the option or the recipe's field), the problem and the accepted forms."""
    if not isinstance(text, str):
        raise SynthwearError(f"{origin} {text!r}: a condition is text; {FORMS}")
    try:
        column, clauses = parse_tokens(tokenize(text))
    except SynthwearError as err:
        raise SynthwearError(f"{origin} {text.strip()!r}: {err}; {FORMS}") from None
    return Condition(column, clauses, text.strip(), origin)


def tokenize(text: str) -> list[Token]:
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        match = TOKEN.match(text, pos)
        if match is None:
            raise SynthwearError(f"unexpected {text[pos]!r} at character {pos + 1}")
        tokens.append(token(match))
        pos = match.end()
    return with_statistics(tokens)


def with_statistics(tokens: list[Token]) -> list[Token]:
    """``mean ( steps )`` read as one name, ``mean(steps)``, which the grammar then compares as a column."""
    out: list[Token] = []
    while tokens:
        texts = [t.text for t in tokens[:4]]
        if len(texts) == 4 and texts[0] in STATISTICS and texts[1::2] == ["(", ")"] and tokens[2].kind == "name":
            out.append(Token("name", "".join(texts), f"{texts[0]}({tokens[2].value})"))
            tokens = tokens[4:]
        else:
            out.append(tokens[0])
            tokens = tokens[1:]
    return out


def token(match: re.Match) -> Token:
    kind, written = match.lastgroup or "", match.group()
    if kind == "number":
        value = float(written)
        if not math.isfinite(value):
            raise SynthwearError(f"{written} is not a finite number")
        return Token(kind, written, value)
    if kind == "string":
        return Token(kind, written, re.sub(r"\\(.)", r"\1", written[1:-1]))
    if kind == "name" and written.startswith("`"):
        return Token(kind, written, written[1:-1])
    if kind == "name" and written in ("in", "not", "and", "or"):
        return Token("keyword", written)
    return Token(kind, written, written if kind == "name" else None)


def parse_tokens(tokens: list[Token]) -> tuple[str, tuple[tuple[str, tuple[Value, ...]], ...]]:
    """The grammar: ``name op literal``, ``literal op name``, ``lit op name op lit``, ``name [not] in [list]``."""
    kinds = [t.kind for t in tokens]
    if not tokens:
        raise SynthwearError("the condition is empty")
    if any(t.text in ("and", "or") for t in tokens):
        raise SynthwearError("one condition per entry (give several; they combine with AND)")
    if "=" in [t.text for t in tokens]:
        raise SynthwearError("'=' is not a comparison; equality is '=='")
    if kinds[:2] == ["name", "keyword"]:
        return tokens[0].value, (membership(tokens[1:]),)  # type: ignore[return-value]
    if len(tokens) == 3 and kinds[:2] == ["name", "op"]:
        return tokens[0].value, (clause(tokens[1].text, tokens[2]),)  # type: ignore[return-value]
    if kinds[0] in ("number", "string") and kinds[1:3] == ["op", "name"] and len(tokens) in (3, 5):
        return tokens[2].value, chained(tokens)  # type: ignore[return-value]
    raise SynthwearError("not a condition this language reads")


def literal(tok: Token) -> Value:
    if tok.kind in ("number", "string"):
        return tok.value  # type: ignore[return-value]
    if tok.kind == "name":
        raise SynthwearError(f"{tok.value} is not quoted (write '{tok.value}' for a category)")
    raise SynthwearError(f"expected a quoted text or a number, got {tok.text!r}")


def clause(op: str, tok: Token) -> tuple[str, tuple[Value, ...]]:
    value = literal(tok)
    if op in ORDERINGS and not isinstance(value, float):
        raise SynthwearError(f"{op!r} compares numbers, and {tok.text} is text")
    return op, (value,)


def chained(tokens: list[Token]) -> tuple[tuple[str, tuple[Value, ...]], ...]:
    """``25 <= bmi`` and ``25 <= bmi < 30``: bounds written on the left read as the mirrored comparison."""
    op, values = clause(tokens[1].text, tokens[0])
    first = (FLIPPED[op], values)
    if len(tokens) == 3:
        return (first,)
    if tokens[3].kind != "op":
        raise SynthwearError(f"expected a comparison after {tokens[2].text}, got {tokens[3].text!r}")
    ops = tokens[1].text + tokens[3].text
    if not (set(ops) <= set("<=") or set(ops) <= set(">=")) or "==" in (tokens[1].text, tokens[3].text):
        raise SynthwearError("a range is written low < column < high (or high > column > low)")
    return first, clause(tokens[3].text, tokens[4])


def membership(tokens: list[Token]) -> tuple[str, tuple[Value, ...]]:
    """``in [..]`` / ``not in [..]`` with a non-empty list of literals of one kind (brackets or parentheses)."""
    negated = tokens[0].text == "not"
    rest = tokens[1:] if negated else tokens
    if not rest or rest[0].text != "in":
        raise SynthwearError("expected 'in' or 'not in' after the column")
    body = rest[1:]
    if len(body) < 3 or (body[0].text, body[-1].text) not in (("[", "]"), ("(", ")")):
        raise SynthwearError("'in' takes a bracketed list: column in ['a', 'b']")
    items = body[1:-1]
    if any(t.text != "," for t in items[1::2]) or len(items) % 2 == 0:
        raise SynthwearError("list items are separated by commas")
    values = tuple(literal(t) for t in items[0::2])
    if len({isinstance(v, float) for v in values}) > 1:
        raise SynthwearError("the list mixes text and numbers")
    return ("not in" if negated else "in"), values


class Conditions:
    """A conjunction of conditions (``--where`` given several times)."""

    def __init__(self, items: Iterable[Condition | str] = (), origin: str = "--where") -> None:
        self.items: tuple[Condition, ...] = tuple(
            i if isinstance(i, Condition) else parse_where(i, origin) for i in items
        )

    def __and__(self, other: Conditions) -> Conditions:
        return Conditions((*self.items, *other.items))

    def __iter__(self) -> Iterator[Condition]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        return f"Conditions({[c.text for c in self.items]!r})"

    def on_persons(self) -> Conditions:
        """The conditions on attributes (who a person is)."""
        return Conditions(c for c in self.items if c.statistic is None)

    def on_days(self) -> Conditions:
        """The conditions on statistics of a person's days (what their days do)."""
        return Conditions(c for c in self.items if c.statistic is not None)

    def check(self, model: AttributeModel) -> dict[str, Allowed]:
        """What each named attribute may take under the conditions on attributes; raises on an unknown
        column, an unseen category, a bound no fitted value meets, or a contradiction (one line, naming them)."""
        allowed: dict[str, Allowed] = {}
        said: dict[str, list[str]] = {}
        for cond in self.on_persons():
            mine = resolve(cond, attribute(model, cond.column, cond.said))
            both = allowed[cond.column] & mine if cond.column in allowed else mine
            said.setdefault(cond.column, []).append(cond.said)
            if not both:
                raise SynthwearError(
                    f"{' and '.join(said[cond.column])} contradict: no value of {cond.column!r} meets them all"
                )
            allowed[cond.column] = both
        return allowed


# --- resolving against a fitted model ------------------------------------------------------------


def attribute(model: AttributeModel, name: str, context: str) -> Attribute:
    """The fitted column ``name``, or a one-line error saying which columns exist (or why it was dropped)."""
    for att in model.attributes:
        if att.name == name:
            return att
    if name in model.dropped:
        raise SynthwearError(
            f"{context}: column {name!r} was dropped when the model was fitted ({model.dropped[name]})"
        )
    raise SynthwearError(f"{context}: unknown column {name!r} (known: {', '.join(model.columns)})")


def resolve(cond: Condition, att: Attribute) -> Allowed:
    allowed = Allowed(frozenset(att.categories)) if att.kind == "categorical" else Allowed(intervals=((-INF, INF),))
    for op, values in cond.clauses:
        mine = (
            categorical_clause(op, values, att, cond.said)
            if att.kind == "categorical"
            else numeric_clause(op, values, att, cond.said)
        )
        allowed = allowed & mine
    if not allowed:
        raise SynthwearError(f"{cond.said}: no value of {cond.column!r} meets it")
    return allowed


def numeric_set(op: str, values: tuple[float, ...]) -> Intervals:
    """The numbers meeting ``column op values`` as a union of closed intervals (strict bounds step one float)."""
    if op in ("==", "in"):
        return tuple((v, v) for v in sorted(set(values)))
    if op in ("!=", "not in"):
        points = sorted(set(values))
        edges = [
            -INF,
            *itertools.chain.from_iterable((math.nextafter(v, -INF), math.nextafter(v, INF)) for v in points),
            INF,
        ]
        return tuple((edges[i], edges[i + 1]) for i in range(0, len(edges), 2))
    bound = values[0]
    return {
        "<": ((-INF, math.nextafter(bound, -INF)),),
        "<=": ((-INF, bound),),
        ">": ((math.nextafter(bound, INF), INF),),
        ">=": ((bound, INF),),
    }[op]


def numeric_clause(op: str, values: tuple[Value, ...], att: Attribute, said: str) -> Allowed:
    if any(isinstance(v, str) for v in values):
        raise SynthwearError(f"{said}: column {att.name!r} is numeric; compare it with numbers, not text")
    wanted = Allowed(intervals=numeric_set(op, values))  # type: ignore[arg-type]
    inside = wanted & Allowed(intervals=((att.low, att.high),))
    if att.integer:
        whole = tuple((float(math.ceil(a)), float(math.floor(b))) for a, b in inside.intervals)
        inside = Allowed(intervals=tuple(p for p in whole if p[0] <= p[1]))
    if not inside:
        kind = "whole numbers " if att.integer else ""
        raise SynthwearError(
            f"{said}: no value the model was fitted on meets it (column {att.name!r} holds {kind}from {att.low:g} to {att.high:g})"
        )
    return inside


def categorical_clause(op: str, values: tuple[Value, ...], att: Attribute, said: str) -> Allowed:
    """Quoted values name categories; numbers select the categories whose label lies wholly within."""
    every = frozenset(att.categories)
    if all(isinstance(v, str) for v in values):
        unseen = [v for v in values if v not in every]
        if unseen:
            raise SynthwearError(
                f"{said}: {unseen[0]!r} is not a category of {att.name!r} (seen: {listing(att.categories)})"
            )
        named = frozenset(values)  # type: ignore[arg-type]
        return Allowed(named if op in ("==", "in") else every - named)
    wanted = numeric_set(op, values)  # type: ignore[arg-type]
    labelled = {c: label_interval(c) for c in att.categories}
    if not any(labelled.values()):
        raise SynthwearError(
            f"{said}: column {att.name!r} is categorical with no numeric categories; "
            f"compare it with quoted categories (seen: {listing(att.categories)})"
        )
    chosen = frozenset(
        c for c, span in labelled.items() if span and any(a <= span[0] and span[1] <= b for a, b in wanted)
    )
    if not chosen:
        raise SynthwearError(
            f"{said}: no category of {att.name!r} lies wholly within it (seen: {listing(att.categories)})"
        )
    return Allowed(chosen)


def label_interval(label: str) -> tuple[float, float] | None:
    """The numbers a category label stands for: '23.0' → [23, 23], '<19' → below 19, '20-25' → [20, 25]; None for text."""
    for pattern, span in LABEL_FORMS:
        match = pattern.fullmatch(label.strip())
        if match:
            numbers = [float(g) for g in match.groups()] + [0.0]
            low, high = span(numbers[0], numbers[1])
            return (low, high) if all(map(math.isfinite, numbers)) and low <= high else None
    return None


def find_category(categories: Sequence[str], value: Value) -> str | None:
    """The category a written value names: the same text, else the category that stands for the same number
    (so '20' finds '20.0', and a float 1.0 read by pandas finds '1'); None when there is none."""
    if isinstance(value, str) and value in categories:
        return value
    try:
        number = float(value)
    except ValueError:
        return None
    return next((c for c in categories if label_interval(c) == (number, number)), None)


def listing(names: Sequence[str], limit: int = 20) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


# --- quotas ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quota:
    """``column=value:share``: exactly ``share`` of the cohort takes this category."""

    column: str
    value: str
    share: float
    text: str


QUOTA_FORM = "a quota is column=category:share, e.g. gender=female:0.5"


def parse_quota(text: str) -> Quota:
    column, eq, rest = str(text).partition("=")
    value, colon, share = rest.rpartition(":")
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    if not (eq and colon and column.strip() and value):
        raise SynthwearError(f"--quota {text!r}: {QUOTA_FORM}")
    return Quota(column.strip().strip("`"), value, quota_share(share.strip(), f"--quota {text!r}"), str(text))


def quota_share(written: Any, context: str) -> float:
    try:
        share = float(written)
    except (TypeError, ValueError):
        share = math.nan
    if isinstance(written, bool) or not 0 < share <= 1:
        raise SynthwearError(f"{context}: the share {written!r} is not a number in (0, 1]")
    return share


def quotas_from_mapping(raw: Any, source: str = "quotas") -> list[Quota]:
    """Quotas written as a mapping, ``{gender: {female: 0.5, male: 0.5}}`` (a YAML file's content)."""
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise SynthwearError(
            f"{source}: quotas are a mapping of column to {{category: share}}, e.g. {{gender: {{female: 0.5}}}}"
        )
    quotas = []
    for column, shares in raw.items():
        for value, share in shares.items():
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise SynthwearError(f"{source}: {column}: {value!r} is not a category (quote it in the YAML)")
            where = f"{source}: {column}: {value}"
            quotas.append(Quota(str(column), str(value), quota_share(share, where), f"{column}={value}:{share}"))
    return quotas


def load_quotas(path: Path) -> list[Quota]:
    """Quotas from a small YAML file (read with the recipe's loader: a key given twice is an error)."""
    path = Path(path)
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=StrictLoader)
    except OSError as err:
        raise SynthwearError(f"{path}: cannot be read ({err.strerror or one_line(err)})") from None
    except (yaml.YAMLError, ValueError, UnicodeDecodeError) as err:
        raise SynthwearError(f"{path}: not valid YAML ({one_line(err)})") from None
    return quotas_from_mapping(raw, str(path))


def quota_cells(
    quotas: Sequence[Quota], n: int, model: AttributeModel, base: dict[str, Allowed]
) -> list[tuple[dict[str, Allowed], int]]:
    """The cohort split into quota groups: each group's conditions (``base`` AND its categories) and its size,
    by largest remainder so the sizes sum to ``n``."""
    groups = grouped(quotas)
    axes = [quota_axis(column, group, model) for column, group in groups.items()]
    cells = list(itertools.product(*axes))
    counts = largest_remainder([math.prod(share for _, _, share in cell) for cell in cells], n)
    out = []
    for cell, count in zip(cells, counts):
        allowed = dict(base)
        for column, (text, mine, _) in zip(groups, cell):
            both = allowed[column] & mine if column in allowed else mine
            if not both:
                raise SynthwearError(f"{text} contradicts the where conditions on {column!r}")
            allowed[column] = both
        if count:
            out.append((allowed, count))
    return out


def grouped(quotas: Sequence[Quota]) -> dict[str, list[Quota]]:
    out: dict[str, list[Quota]] = {}
    for quota in quotas:
        out.setdefault(quota.column, []).append(quota)
    return out


def quota_axis(column: str, group: list[Quota], model: AttributeModel) -> list[tuple[str, Allowed, float]]:
    """One column's quota groups, (description, allowed values, share), plus the rest of the cohort if any."""
    att = attribute(model, column, f"--quota {group[0].text!r}")
    if att.kind != "categorical":
        raise SynthwearError(
            f"--quota {group[0].text!r}: quotas name categories, and {column!r} is numeric (use --where for ranges)"
        )
    named = []
    for quota in group:
        found = find_category(att.categories, quota.value)
        if found is None:
            raise SynthwearError(
                f"--quota {quota.text!r}: {quota.value!r} is not a category of {column!r} (seen: {listing(att.categories)})"
            )
        if found in named:
            raise SynthwearError(f"--quota {quota.text!r}: {column!r} = {found!r} has two quotas")
        named.append(found)
    total = sum(q.share for q in group)
    if total > 1 + 1e-9:
        raise SynthwearError(f"quotas on {column!r} sum to {total:g}; shares of one column sum to at most 1")
    axis = [(f"--quota {q.text!r}", Allowed(frozenset([c])), q.share) for q, c in zip(group, named)]
    rest = 1 - total
    if rest > 1e-9:
        others = Allowed(frozenset(att.categories) - frozenset(named), missing=att.missing > 0)
        if not others:
            raise SynthwearError(
                f"quotas on {column!r} sum to {total:g} and name every category; the other {rest:g} has nothing to take"
            )
        axis.append((f"the rest of the cohort (other values of {column!r})", others, rest))
    return axis


def largest_remainder(shares: Sequence[float], n: int) -> list[int]:
    """Whole counts proportional to ``shares`` (summing to 1) that sum to exactly ``n``."""
    exact = [s * n for s in shares]
    counts = [math.floor(e) for e in exact]
    order = sorted(range(len(shares)), key=lambda i: (counts[i] - exact[i], i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts
