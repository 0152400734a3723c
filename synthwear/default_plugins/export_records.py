"""Reading the records of a device export: JSON and CSV files, fields, numbers and days, one line per error.

Every importer but Apple Health's reads JSON or CSV files, and the steps after parsing are the same:
take a field of every record, read numbers and dates, say which record is wrong. A field is either
required (Fitbit's per-minute steps: every record has it) or optional (Garmin, Oura and Google
Fit write one record per day or per sleep, in which a value may be absent or null when the device
measured nothing; it becomes NaN). A value that is there and wrong (not a number, negative, not a
date) stops the import, with one line naming the file and the record (JSON: ``record 3``, counted
from 0) or the line (CSV: ``line 5``, the header being line 1). The helpers also find the persons,
put each one's channels together into rows of the daily table, count what was read or skipped for
the notes, and show a bar when an export has many files.
"""

from __future__ import annotations

import json
import reprlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from rich.progress import Progress

from synthwear.default_plugins.export_folders import person_folders, unread_exports
from synthwear.errors import SynthwearError, one_line
from synthwear.interfaces import ImportResult
from synthwear.progress import feedback
from synthwear.tables import refuse_nul_bytes

DAY = "%Y-%m-%d"  # every export here writes its calendar days this way
FILES_FOR_A_BAR = 50  # fewer files read in well under a second: a bar would only flash
MINUTES_PER_DAY = 24 * 60  # no day holds more sleep than this
# What no body does, far beyond any person's record: a value above it is a broken export, not data
MOST_STEPS_PER_MINUTE = 1000  # about 17 steps a second; the fastest sprinters take about 5
MOST_HEART_RATE = 300  # bpm, any heart rate
MOST_STEPS_PER_DAY = MOST_STEPS_PER_MINUTE * MINUTES_PER_DAY
MOST_SCORE = 100  # the vendors' 0-100 scores (readiness, stress, Body Battery)
MOST_HRV_MS = 1000  # heart-rate variability (SDNN, RMSSD), ms: trained athletes reach about 300
MOST_BREATHS_PER_MINUTE = 150  # respiratory rate: a newborn's fastest is about 60
# Days before this are no device's: the first consumer GPS and heart-rate watches with exports came
# later (Garmin's Forerunner: 2003). A record dated earlier, or after the day the import runs, is a
# device clock that was reset or set wrong, not a day of a person's data.
FIRST_PLAUSIBLE_DAY = pd.Timestamp(2000, 1, 1)
EXAMPLE = pd.Timestamp(2024, 3, 2)  # the date error messages show, in the layout expected
# the kinds pandas' infer_dtype gives values among which there is no true/false
NO_FLAGS = frozenset({"string", "integer", "floating", "mixed-integer-float", "empty"})
ABSENT = object()  # a field a record does not have (None is a field written as null)


@dataclass(frozen=True)
class Source:
    """A file and what its records are called in errors: ``record 0``, ``segment 2``, ``line 2``."""

    file: Path
    label: str = "record"
    first: int = 0  # the number of the first record (2 for a CSV's first row: the header is line 1)

    def error(self, position: int, problem: str) -> SynthwearError:
        return SynthwearError(f"{self.file}: {self.label} {position + self.first}: {problem}")


def csv_source(file: Path) -> Source:
    """Rows of a CSV file with a header, named by their line in the file."""
    return Source(file, "line", 2)


def read_json(file: Path) -> object:
    """The file's JSON document; an unreadable or unparsable file is a one-line error."""
    try:
        with file.open("rb") as handle:
            return json.load(handle, parse_constant=not_json)
    except OSError as error:
        raise SynthwearError(f"{file}: cannot read ({error.strerror})") from None
    except ValueError as error:  # JSONDecodeError, or bytes that are not UTF-8
        raise SynthwearError(f"{file}: not valid JSON ({error})") from None
    except RecursionError:  # the parser recurses once per level of nesting
        raise SynthwearError(f"{file}: not an export's JSON (nested too deeply to read)") from None


def not_json(token: str) -> None:
    """Python's json reads NaN and Infinity, which JSON does not have: a NaN would pass as missing."""
    raise ValueError(f"{token} is not JSON")


def json_list(file: Path, document: object, what: str = "a list of records") -> list:
    """``document`` when it is a JSON list, else a one-line error saying what was expected."""
    if not isinstance(document, list):
        raise SynthwearError(f"{file}: expected {what}, found a JSON {type(document).__name__}")
    return document


def read_csv(file: Path, required: tuple[str, ...]) -> pd.DataFrame:
    """The file's rows as strings (empty cell = missing), with the ``required`` columns present."""
    try:  # header=None: a row longer than the header is an error, not silently made the index
        refuse_nul_bytes(file)
        rows = pd.read_csv(file, header=None, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig")
    except OSError as error:
        raise SynthwearError(f"{file}: cannot read ({error.strerror})") from None
    except ValueError as error:  # a ragged row, an empty file, bytes that are not UTF-8
        raise SynthwearError(f"{file}: not valid CSV ({one_line(error)})") from None
    header = rows.iloc[0] if len(rows) else pd.Series(dtype=str)
    repeated = header[header.duplicated()]
    if len(repeated):
        raise SynthwearError(f"{file}: the header names the column '{repeated.iloc[0]}' more than once")
    table = rows.iloc[1:].set_axis(list(header), axis=1).reset_index(drop=True)
    for name in required:
        if name not in table.columns:
            raise SynthwearError(f"{file}: no '{name}' column")
    return table


def field(records: list, source: Source, *keys: str, required: bool = True) -> pd.Series:
    """One (possibly nested) field of every record; absent or null is None, or an error if ``required``
    (saying which: a null value was written, an absent one was not)."""
    name = ".".join(keys)
    try:  # the usual case, when every record has the field, without a Python loop per record:
        values = records  # Fitbit's per-minute files hold tens of thousands of records
        for key in keys:
            values = [value[key] for value in values]
        if not required or None not in values:
            return pd.Series(values, dtype=object, name=name)
    except (KeyError, TypeError):
        pass
    return pd.Series(
        [_lookup(record, position, source, keys, required) for position, record in enumerate(records)],
        dtype=object,
        name=name,
    )


def _lookup(record: object, position: int, source: Source, keys: tuple[str, ...], required: bool) -> object:
    """One record's field, or the error that names the record (the slow path of :func:`field`)."""
    if not isinstance(record, dict):
        raise source.error(position, f"expected a JSON object, found {reprlib.repr(record)}")
    value = record
    for key in keys:
        value = value.get(key, ABSENT) if isinstance(value, dict) else ABSENT
    if required and value is ABSENT:
        raise source.error(position, f"no '{'.'.join(keys)}' field")
    if required and value is None:
        raise source.error(position, f"'{'.'.join(keys)}' is null")
    return None if value is ABSENT else value


def reject_first(bad: pd.Series, values: pd.Series, source: Source, problem: str) -> None:
    """Raise for the first record flagged in ``bad``, quoting its value (shortened, one line)."""
    if bad.any():
        position = int(bad.to_numpy().argmax())
        value = values.iloc[position]
        value = value.item() if isinstance(value, np.generic) else value  # 500, not np.int64(500)
        raise source.error(position, f"'{values.name}' {problem} ({reprlib.repr(value)})")


def numbers(
    values: pd.Series, source: Source, *, least: float = 0.0, whole: bool = False, most: float = np.inf
) -> pd.Series:
    """Numbers as float64, absent ones NaN; text, true/false, infinity or a value below ``least`` is
    an error (by default a negative one: no device writes one for a count or a duration), and so is a
    fraction where ``whole`` numbers are counted (steps, minutes) and a value above ``most``, what no
    body does (1e308 steps in a minute, which a day's sum turns into infinity)."""
    present = values.notna()
    parsed = pd.to_numeric(values.where(present), errors="coerce").astype("float64")
    flags = values.map(lambda value: isinstance(value, bool)).astype(bool) if _may_hold_flags(values) else False
    reject_first(present & (flags | ~np.isfinite(parsed)), values, source, "is not a number")
    below = "is negative" if least == 0 else f"is less than {least:g}, which no body does"
    reject_first(parsed < least, values, source, below)
    if whole:
        reject_first(present & (parsed % 1 != 0), values, source, "is not a whole number")  # NaN % 1 is NaN
    reject_first(parsed > most, values, source, f"is more than {most:g}, which no body does")
    return pd.Series(parsed.to_numpy(), name=values.name)


def reject_conflicting_repeats(keys: pd.Series, values: pd.Series, source: Source, what: str) -> None:
    """Records repeated at the borders of an export's chunks repeat their values; a repeat that gives
    another value (two step counts for one minute) is a broken or merged export, and keeping either
    value would be a guess. Absent values (NaN) never conflict."""
    present = values.notna().to_numpy()
    frame = pd.DataFrame({"key": keys.to_numpy()[present], "value": values.to_numpy()[present]})
    earlier = frame.groupby("key")["value"].transform("first").to_numpy()
    differs = np.flatnonzero(frame["value"].to_numpy() != earlier)  # among the present records
    if len(differs):
        position = int(np.flatnonzero(present)[differs[0]])
        raise source.error(
            position,
            f"'{values.name}' is {values.iloc[position]:g} for a {what} an earlier record gives as "
            f"{earlier[differs[0]]:g}; repeated records must agree",
        )


def _may_hold_flags(values: pd.Series) -> bool:
    """Whether true/false may be among the values: pandas tells all strings or all numbers apart
    without a Python call per value, which matters for Fitbit's tens of thousands of step minutes."""
    return pd.api.types.infer_dtype(values, skipna=True) not in NO_FLAGS


def days(values: pd.Series, source: Source, layout: str = DAY) -> pd.Series:
    """Calendar days written ``2024-03-02``, or times in another exact ``layout`` (Fitbit's
    ``2024-03-02 00:00:00``); another layout, a time of day where none belongs or a time zone is an error."""
    parsed = pd.to_datetime(values, format=layout, errors="coerce")
    if (bad := parsed.isna()).any():
        try:  # the layout is right, the year is not one a table holds (1600-01-01)
            datetime.strptime(values[bad].iloc[0], layout)
            problem = "is outside 1677-09-22..2262-04-11, the dates a table can hold"
        except (TypeError, ValueError):
            problem = f"is not a {'day' if layout == DAY else 'time'} like {EXAMPLE:{layout}}"
        reject_first(bad, values, source, problem)
    return parsed


def read_files(
    files: list[Path], read: Callable[[Path], pd.DataFrame], advance: Callable[..., None]
) -> pd.DataFrame | None:
    """The records of all ``files`` (one kind of file of one person) in file-name order; None without files."""
    frames = []
    for file in files:
        frames.append(read(file))
        advance()
    return pd.concat(frames, ignore_index=True) if frames else None


def no_values() -> pd.Series:
    """A channel without any day (its file is absent)."""
    return pd.Series(dtype="float64", index=pd.DatetimeIndex([]))


def first_per_day(frame: pd.DataFrame, column: str) -> pd.Series:
    """The column's value per ``day``: a day given twice (overlapping files, repeated records)
    counts once, keeping its first value in file order; an empty first value does not hide a later one."""
    return frame[column].groupby(frame["day"]).first()


def repeated_days(frame: pd.DataFrame) -> int:
    """How many records give a day that an earlier record already gave."""
    return int(frame["day"].duplicated().sum())


def channel_note(
    person_id: str, channel: str, per_day: pd.Series, records: int, files: list[Path], pattern: str, **left_out: int
) -> str:
    """One line: days with a value, from how many records in how many files, and what was left out
    and why (``left_out`` maps a reason, underscores for spaces, to its count; zero counts are not shown)."""
    plural = "" if len(files) == 1 else "s"
    note = f"{person_id}: {channel}: {int(per_day.notna().sum())} days with a value, from {records} records"
    note += f" in {len(files)} {pattern} file{plural}"
    shown = [f"{why.replace('_', ' ')}: {count}" for why, count in left_out.items() if count]
    return note + (f" ({'; '.join(shown)})" if shown else "")


def person_rows(channels: dict[str, pd.Series], person_id: str) -> pd.DataFrame:
    """One person's rows of the daily table: the days on which at least one channel has a value."""
    frame = pd.DataFrame(channels).sort_index().dropna(how="all")
    frame = frame.rename_axis("date").reset_index()
    frame.insert(0, "person_id", person_id)
    return frame


def daily_table(rows: list[pd.DataFrame], channels: list[str]) -> pd.DataFrame:
    """All persons' rows, sorted by person and date, typed as the engine's daily table, with the
    ``channels`` in their order; one no person's rows have (Apple's optional ones) is left out."""
    frame = pd.concat(rows).sort_values(["person_id", "date"], kind="stable", ignore_index=True)
    channels = [channel for channel in channels if channel in frame.columns]
    frame = frame[["person_id", "date", *channels]]
    outside = ~frame["date"].map(lambda day: pd.Timestamp.min <= day <= pd.Timestamp.max).astype(bool)
    if outside.any():  # a file named 1600-01-01.csv
        first = frame[outside].iloc[0]
        raise SynthwearError(
            f"{first['person_id']}: the day {first['date'].date()} is outside 1677-09-22..2262-04-11, "
            "the dates a table can hold"
        )
    return frame.astype({"date": "datetime64[ns]", **dict.fromkeys(channels, "float64")})


@contextmanager
def file_bar(progress: bool | Progress | None, total: int, description: str) -> Iterator[Callable[..., None]]:
    """A function to call once per file read; it advances a bar only when there are many files."""
    with feedback(progress if total >= FILES_FOR_A_BAR else None) as bars:
        yield bars.task(description, total)


def import_persons(
    path: Path,
    found: tuple[Callable[[Path], bool], str, Callable[[Path], dict[str, list[Path]]]],
    read_person: Callable[..., pd.DataFrame],
    channels: list[str],
    progress: bool | Progress | None,
) -> ImportResult:
    """The steps every importer shares: find the persons (``found``: the importer's test of a person's
    folder or file, what it expects for the error message, and its files of each kind), read each one
    with ``read_person(files, person_id, notes, advance)``, and return the table with the notes."""
    is_person, expected, files_of = found
    persons, notes = person_folders(Path(path), is_person, expected)
    files = [(files_of(entry), person_id) for entry, person_id in persons]
    if persons[0][0] == Path(path):  # the folder itself is the one person
        notes += unread_exports(Path(path), is_person, [file for kind in files[0][0].values() for file in kind])
    total = sum(len(kind) for person_files, _ in files for kind in person_files.values())
    with file_bar(progress, total, f"reading {total} files") as advance:
        rows = [read_person(person_files, person_id, notes, advance) for person_files, person_id in files]
    table = without_impossible_sleep(daily_table(rows, channels), notes)
    return ImportResult(without_implausible_days(table, notes, pd.Timestamp.today().normalize()), notes)


def without_implausible_days(frame: pd.DataFrame, notes: list[str], today: pd.Timestamp) -> pd.DataFrame:
    """The days from ``FIRST_PLAUSIBLE_DAY`` to the day after ``today`` (a time zone ahead), with a note
    per person naming what was dropped: one record of a reset clock (dated 1900 or 2200) would
    otherwise stretch a person's history over centuries of empty days."""
    last = today + pd.Timedelta(days=1)
    implausible = (frame["date"] < FIRST_PLAUSIBLE_DAY) | (frame["date"] > last)
    for person_id, rows in frame[implausible].groupby("person_id", sort=False):
        dates = ", ".join(str(day.date()) for day in rows["date"].iloc[:3]) + (", ..." if len(rows) > 3 else "")
        notes.append(
            f"{person_id}: {len(rows)} day(s) dated before {FIRST_PLAUSIBLE_DAY.date()} or after {last.date()} "
            f"(a device clock set wrong?) left out: {dates}"
        )
    return frame[~implausible].reset_index(drop=True)


def without_impossible_sleep(frame: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """Days with more sleep than the day has minutes left empty, with a note per person: such a sum
    comes from records that overlap (two main sleeps, a session spanning days), not from a night, and
    no importer can tell which record is right."""
    if "sleep_minutes" not in frame.columns:
        return frame
    impossible = frame["sleep_minutes"] > MINUTES_PER_DAY
    for person_id, rows in frame[impossible].groupby("person_id", sort=False):
        first = rows.iloc[0]
        notes.append(
            f"{person_id}: sleep_minutes: {len(rows)} day(s) with more than {MINUTES_PER_DAY:,} minutes asleep "
            f"(overlapping sleep records?) left empty, the first {first['date'].date()} "
            f"({first['sleep_minutes']:,.0f} minutes)"
        )
    kept = frame.assign(sleep_minutes=frame["sleep_minutes"].mask(impossible))
    values = kept.drop(columns=["person_id", "date"])
    return kept[values.notna().any(axis=1)].reset_index(drop=True)  # a day with nothing left is no row
