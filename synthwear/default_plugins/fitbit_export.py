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

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from synthwear.default_plugins.export_records import (
    DAY,
    MINUTES_PER_DAY,
    MOST_HEART_RATE,
    MOST_STEPS_PER_MINUTE,
    Source,
    days,
    field,
    import_persons,
    json_list,
    no_values,
    numbers,
    person_rows,
    read_json,
    reject_conflicting_repeats,
    reject_first,
)
from synthwear.hookspecs import hookimpl
from synthwear.interfaces import ImportResult

TIMESTAMP = "%Y-%m-%d %H:%M:%S"  # the export's "dateTime" (steps per minute, resting HR per day)


def _numbers(records: list, source: Source, *keys: str, **rules: float) -> pd.Series:
    """A field every record has, as numbers (the export writes steps as strings); ``rules`` as
    :func:`numbers` takes them (values below ``least``, default 0, refused; fractions where ``whole``)."""
    return numbers(field(records, source, *keys), source, **rules)


def _times(records: list, source: Source, key: str, layout: str) -> pd.Series:
    """A field every record has, as timestamps in the export's exact layout."""
    return days(field(records, source, key), source, layout)


def _flags(values: pd.Series, source: Source) -> pd.Series:
    """JSON true/false; 1 or "true" would be a different export format, so they are errors."""
    reject_first(~values.map(type).eq(bool), values, source, "is not true or false")
    return values.astype(bool)


def _resting_hr(records: list, source: Source) -> pd.Series:
    """Daily resting heart rate; Fitbit writes 0 when it has no estimate, which means missing."""
    day = _times(records, source, "dateTime", TIMESTAMP).dt.normalize()
    bpm = _numbers(records, source, "value", "value", most=MOST_HEART_RATE)
    bpm = bpm.mask(bpm == 0)
    reject_conflicting_repeats(day, bpm, source, "day")
    return bpm.groupby(day).first()  # a repeated day keeps its estimate


def _sleep_minutes(records: list, source: Source) -> pd.Series:
    """Minutes asleep in main sleeps per night; naps are not the night's sleep, repeats count once."""
    logs = pd.DataFrame(
        {
            "log": _numbers(records, source, "logId", least=-np.inf),  # an id, not a count
            "day": _times(records, source, "dateOfSleep", DAY),
            "minutes": _numbers(records, source, "minutesAsleep", whole=True, most=MINUTES_PER_DAY),
            "main": _flags(field(records, source, "mainSleep"), source),
        }
    )
    reject_conflicting_repeats(logs["log"], logs["minutes"].rename("minutesAsleep"), source, "sleep log")
    first_day = logs.groupby("log")["day"].transform("first")
    if (moved := logs["day"] != first_day).any():  # one log on two nights: keeping either is a guess
        at = int(moved.to_numpy().argmax())
        raise source.error(
            at,
            f"'dateOfSleep' is {logs['day'].iloc[at]:%Y-%m-%d} for a sleep log an earlier record dates "
            f"{first_day.iloc[at]:%Y-%m-%d}; repeated records must agree",
        )
    nights = logs[logs["main"]].drop_duplicates("log")
    return nights.groupby("day")["minutes"].sum()


def _steps(records: list, source: Source) -> pd.Series:
    """Steps per calendar day from per-minute counts; a repeated minute counts once, and a day
    without any minute stays absent (missing) rather than becoming 0."""
    minutes = pd.DataFrame(
        {
            "time": _times(records, source, "dateTime", TIMESTAMP),
            "steps": _numbers(records, source, "value", whole=True, most=MOST_STEPS_PER_MINUTE),
        }
    )
    reject_conflicting_repeats(minutes["time"], minutes["steps"].rename("value"), source, "minute")
    minutes = minutes.drop_duplicates("time")
    return minutes.groupby(minutes["time"].dt.normalize())["steps"].sum()


# file name -> (channel, reader); the order is the order of the output's columns
CHANNELS: dict[str, tuple[str, Callable[[list, Source], pd.Series]]] = {
    "resting_heart_rate.json": ("resting_hr", _resting_hr),
    "sleep.json": ("sleep_minutes", _sleep_minutes),
    "steps.json": ("steps", _steps),
}


def _is_person_folder(folder: Path) -> bool:
    return folder.is_dir() and any((folder / name).is_file() for name in CHANNELS)


def _files(folder: Path) -> dict[str, list[Path]]:
    """Each file of the export, as a list of one, or none when the file is absent."""
    return {name: [folder / name] if (folder / name).is_file() else [] for name in CHANNELS}


def _read_person(files: dict[str, list[Path]], person_id: str, notes: list[str], advance) -> pd.DataFrame:
    """One person's daily rows (days with at least one channel), noting absent or empty channels."""
    channels = {}
    for name, (channel, read) in CHANNELS.items():
        file = next(iter(files[name]), None)
        if file is None:
            notes.append(f"{person_id}: no {name}, {channel} left empty")
            channels[channel] = no_values()
            continue
        channels[channel] = read(json_list(file, read_json(file)), Source(file))
        advance()
        if not channels[channel].notna().any():
            notes.append(f"{person_id}: {name} has no values, {channel} left empty")
    return person_rows(channels, person_id)


def read_fitbit_export(path: Path) -> ImportResult:
    """Read a Fitbit export folder: one person's JSON files, or one sub-folder per person
    (pseudonymous ids, see :mod:`~synthwear.default_plugins.export_folders`).

    Returns the daily table ``person_id, date, resting_hr, sleep_minutes, steps`` sorted by person
    and date, and one note per missing file, empty channel or skipped sub-folder.
    """
    channels = [channel for channel, _ in CHANNELS.values()]
    return import_persons(path, (_is_person_folder, ", ".join(CHANNELS), _files), _read_person, channels, None)


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
