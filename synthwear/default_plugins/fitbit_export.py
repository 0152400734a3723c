"""Import a Fitbit account export as the engine's tidy daily table.

A Fitbit export is not a daily table: resting heart rate is daily but uses 0 for "no estimate",
sleep comes as one record per sleep log (naps included), steps come per minute as strings, and the
export is cut into 30-day chunks that repeat some sleep logs and step minutes at their borders.
This module turns that into one row per person-day with ``resting_hr``, ``sleep_minutes`` and
``steps`` (NaN = missing), so that a repeated log or a day without records can never pass for data.

Everything after ``json.load`` is vectorised with pandas, because one person's per-minute steps are
tens of thousands of records: the PMData sample (53,278 records) imports in about 0.04 s, half of
it in the JSON parser (``benchmarks/import_fitbit.py``).
Bad input raises :class:`~synthwear.errors.SynthwearError` with one line naming the file and record.

Sample export: PMData (Thambawita et al., MMSys 2020, doi:10.1145/3339825.3394926), CC BY 4.0.
"""

from __future__ import annotations

import json
import reprlib
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from synthwear.default_plugins.export_folders import person_folders
from synthwear.errors import SynthwearError
from synthwear.hookspecs import hookimpl
from synthwear.interfaces import ImportResult

TIMESTAMP = "%Y-%m-%d %H:%M:%S"  # the export's "dateTime" (steps per minute, resting HR per day)
DATE = "%Y-%m-%d"  # the export's "dateOfSleep"


def _field(records: list, file: Path, *keys: str) -> pd.Series:
    """One (possibly nested) field of every record; a record without it is named in the error."""
    name = ".".join(keys)
    try:
        values = records
        for key in keys:
            values = [value[key] for value in values]
    except (KeyError, TypeError):
        for index, record in enumerate(records):  # only on bad input: find which record it was
            try:
                for key in keys:
                    record = record[key]
            except (KeyError, TypeError):
                raise SynthwearError(f"{file}: record {index}: no '{name}' field") from None
    return pd.Series(values, dtype=object, name=name)


def _reject_first(bad: pd.Series, values: pd.Series, file: Path, problem: str) -> None:
    """Raise for the first record flagged in ``bad``, quoting its value (shortened, one line)."""
    if bad.any():
        index = int(bad.to_numpy().argmax())
        raise SynthwearError(f"{file}: record {index}: '{values.name}' {problem} ({reprlib.repr(values.iloc[index])})")


def _numbers(values: pd.Series, file: Path) -> pd.Series:
    """Numbers (the export writes steps as strings) as float64; anything else is an error."""
    try:
        numbers = pd.Series(values.to_numpy().astype("float64"), name=values.name)
    except (TypeError, ValueError):  # some value is no number: let pandas mark which (slower)
        numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    _reject_first(numbers.isna(), values, file, "is not a number")
    return numbers


def _dates(values: pd.Series, file: Path, layout: str) -> pd.Series:
    """Timestamps in the export's exact layout; a time zone or another layout is an error."""
    dates = pd.to_datetime(values, format=layout, errors="coerce")
    _reject_first(dates.isna(), values, file, f"is not a date like {pd.Timestamp(2019, 11, 1):{layout}}")
    return dates


def _flags(values: pd.Series, file: Path) -> pd.Series:
    """JSON true/false; 1 or "true" would be a different export format, so they are errors."""
    _reject_first(~values.map(type).eq(bool), values, file, "is not true or false")
    return values.astype(bool)


def _resting_hr(records: list, file: Path) -> pd.Series:
    """Daily resting heart rate; Fitbit writes 0 when it has no estimate, which means missing."""
    days = _dates(_field(records, file, "dateTime"), file, TIMESTAMP).dt.normalize()
    bpm = _numbers(_field(records, file, "value", "value"), file)
    return bpm.mask(bpm == 0).groupby(days).first()  # a repeated day keeps its estimate


def _sleep_minutes(records: list, file: Path) -> pd.Series:
    """Minutes asleep in main sleeps per night; naps are not the night's sleep, repeats count once."""
    logs = pd.DataFrame(
        {
            "log": _numbers(_field(records, file, "logId"), file),
            "day": _dates(_field(records, file, "dateOfSleep"), file, DATE),
            "minutes": _numbers(_field(records, file, "minutesAsleep"), file),
            "main": _flags(_field(records, file, "mainSleep"), file),
        }
    )
    nights = logs[logs["main"]].drop_duplicates("log")
    return nights.groupby("day")["minutes"].sum()


def _steps(records: list, file: Path) -> pd.Series:
    """Steps per calendar day from per-minute counts; a repeated minute counts once, and a day
    without any minute stays absent (missing) rather than becoming 0."""
    minutes = pd.DataFrame(
        {
            "time": _dates(_field(records, file, "dateTime"), file, TIMESTAMP),
            "steps": _numbers(_field(records, file, "value"), file),
        }
    ).drop_duplicates("time")
    return minutes.groupby(minutes["time"].dt.normalize())["steps"].sum()


# file name -> (channel, reader); the order is the order of the output's columns
CHANNELS: dict[str, tuple[str, Callable[[list, Path], pd.Series]]] = {
    "resting_heart_rate.json": ("resting_hr", _resting_hr),
    "sleep.json": ("sleep_minutes", _sleep_minutes),
    "steps.json": ("steps", _steps),
}


def _load_records(file: Path) -> list:
    """The file's list of records; unreadable or unparsable files become a one-line error."""
    try:
        with file.open("rb") as handle:
            records = json.load(handle)
    except OSError as error:
        raise SynthwearError(f"{file}: cannot read ({error.strerror})") from None
    except ValueError as error:  # JSONDecodeError, or bytes that are not UTF-8
        raise SynthwearError(f"{file}: not valid JSON ({error})") from None
    if not isinstance(records, list):
        raise SynthwearError(f"{file}: expected a list of records, found a JSON {type(records).__name__}")
    return records


def _is_person_folder(folder: Path) -> bool:
    return folder.is_dir() and any((folder / name).is_file() for name in CHANNELS)


def _read_person(folder: Path, person_id: str, notes: list[str]) -> pd.DataFrame:
    """One person's daily rows (days with at least one channel), noting absent channels."""
    channels = {}
    for name, (channel, read) in CHANNELS.items():
        file = folder / name
        if not file.is_file():
            notes.append(f"{person_id}: no {name}, {channel} left empty")
            series = pd.Series(dtype="float64", index=pd.DatetimeIndex([]))
        else:
            series = read(_load_records(file), file)
            if not series.notna().any():
                notes.append(f"{person_id}: {name} has no values, {channel} left empty")
        channels[channel] = series
    frame = pd.DataFrame(channels).sort_index().dropna(how="all")
    frame = frame.rename_axis("date").reset_index()
    frame.insert(0, "person_id", person_id)
    return frame


def read_fitbit_export(path: Path) -> ImportResult:
    """Read a Fitbit export folder: one person's JSON files, or one sub-folder per person
    (pseudonymous ids, see :mod:`~synthwear.default_plugins.export_folders`).

    Returns the daily table ``person_id, date, resting_hr, sleep_minutes, steps`` sorted by person
    and date, and one note per missing file, empty channel or skipped sub-folder.
    """
    persons, notes = person_folders(Path(path), _is_person_folder, ", ".join(CHANNELS))
    frame = pd.concat([_read_person(folder, person_id, notes) for folder, person_id in persons])
    frame = frame.sort_values(["person_id", "date"], kind="stable", ignore_index=True)
    columns = {channel: "float64" for channel, _ in CHANNELS.values()}
    return ImportResult(frame.astype({"date": "datetime64[ns]", **columns}), notes)


class FitbitExportImporter:
    """The ``fitbit`` importer the engine finds through the ``register_importers`` hook."""

    description = "Fitbit account export: resting_heart_rate.json, sleep.json, steps.json per person"

    def __call__(self, path: Path) -> ImportResult:
        """Import ``path`` (see :func:`read_fitbit_export`)."""
        return read_fitbit_export(path)


@hookimpl
def register_importers(register):
    """Offer the importer as ``fitbit`` (``synthwear import fitbit``, ``data: {importer: fitbit}``)."""
    register("fitbit", FitbitExportImporter())
