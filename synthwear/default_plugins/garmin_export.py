"""Import a Garmin account export (Garmin's "Export your data", the ``DI_CONNECT`` folder) as the
engine's tidy daily table.

Garmin writes one summary per calendar day (``DI-Connect-Aggregator/UDSFile_*.json``: resting heart
rate, steps, stress, Body Battery) and one sleep record per night
(``DI-Connect-Wellness/*_sleepData.json``), in files of a few months each whose date ranges can
overlap. This module turns them into one row per person-day:

- ``resting_hr``: the summary's ``restingHeartRate`` (bpm); null or 0 means no estimate.
- ``steps``: the summary's ``totalSteps``.
- ``sleep_minutes``: deep + light + REM seconds of the night's record / 60; awake time is not
  sleep, and naps (``napList``, ``napTimeSeconds``) are not part of those stages. The night belongs
  to its ``calendarDate``, which Garmin sets to the day the sleeper woke up. A record without any
  stage (a sleep window the watch did not measure) gives no value; a single absent stage (REM on a
  watch without REM detection) counts as 0.
- ``stress``: the average stress level (0-100) of the ``TOTAL`` entry of ``allDayStress``; Garmin
  writes -1 or -2 when it had too little data, and those are missing, not low stress.
- ``body_battery``: the day's ``HIGHEST`` Body Battery (0-100), i.e. the charge after the night.
- ``hrv``: the overnight HRV (ms) of ``*_healthStatusData.json``, when the export has those files
  (watches with HRV Status); otherwise the channel stays empty and a note says so.

A day repeated across files counts once, keeping its first value in file-name order (Garmin names
the files by their date range, so the earlier file first). Absent or null values are missing;
a value that is there and is not a number, a negative count, or a record without ``calendarDate``
stops the import with one line naming the file and the record. Files are small (one record a
day), so records are read with plain Python and tables are built with pandas.

File layout and field names were checked against public parsers of this export
(tests/data/garmin_export_sample/README.md).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from rich.progress import Progress

from synthwear.default_plugins.export_records import (
    MOST_HEART_RATE,
    MOST_HRV_MS,
    MOST_SCORE,
    MOST_STEPS_PER_DAY,
    Source,
    channel_note,
    days,
    field,
    first_per_day,
    import_persons,
    json_list,
    no_values,
    numbers,
    person_rows,
    read_files,
    read_json,
    reject_first,
    repeated_days,
)
from synthwear.hookspecs import hookimpl
from synthwear.interfaces import ImportResult

AGGREGATOR, WELLNESS = "DI-Connect-Aggregator", "DI-Connect-Wellness"
NO_DATA_CODES = (-1, -2)  # Garmin's stress when it had too little data: missing, not low stress
FILES = {  # kind -> (folder under DI_CONNECT, file pattern)
    "daily": (AGGREGATOR, "UDSFile_*.json"),
    "sleep": (WELLNESS, "*_sleepData.json"),
    "health": (WELLNESS, "*_healthStatusData.json"),
}
CHANNELS = {  # channel -> the kind of file it comes from; the order is the output's
    "resting_hr": "daily",
    "sleep_minutes": "sleep",
    "steps": "daily",
    "stress": "daily",
    "body_battery": "daily",
    "hrv": "health",
}
STAGES = ("deepSleepSeconds", "lightSleepSeconds", "remSleepSeconds")  # asleep; awakeSleepSeconds is not


def _entry(lists: pd.Series, source: Source, kind_key: str, kind: str, value_key: str) -> pd.Series:
    """Per record, ``value_key`` of the list entry whose ``kind_key`` is ``kind`` (Garmin lists
    stress per TOTAL/AWAKE/ASLEEP and Body Battery per HIGHEST/LOWEST/...); None where there is none.
    A list that is something else is malformed, not "no entry"."""
    listed = lists.map(lambda entries: isinstance(entries, list) or entries is None or entries != entries).astype(bool)
    reject_first(~listed, lists, source, "is not a list")

    def pick(entries: object) -> object:
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and entry.get(kind_key) == kind:
                return entry.get(value_key)
        return None

    return lists.map(pick).rename(f"{lists.name}[{kind}].{value_key}")


def _daily(records: list, source: Source) -> pd.DataFrame:
    """The day summaries of one UDSFile; resting HR 0 and the stress no-data codes become NaN."""
    stress_lists = field(records, source, "allDayStress", "aggregatorList", required=False)
    battery_lists = field(records, source, "bodyBattery", "bodyBatteryStatList", required=False)
    resting = numbers(field(records, source, "restingHeartRate", required=False), source, most=MOST_HEART_RATE)
    written = _entry(stress_lists, source, "type", "TOTAL", "averageStressLevel")
    stress = numbers(written, source, least=-np.inf, most=MOST_SCORE)  # negatives: the codes, checked next
    reject_first(
        stress.lt(0) & ~stress.isin(NO_DATA_CODES), written, source, "is negative and no no-data code (-1, -2)"
    )
    return pd.DataFrame(
        {
            "day": days(field(records, source, "calendarDate"), source),
            "resting_hr": resting.mask(resting == 0),
            "steps": numbers(
                field(records, source, "totalSteps", required=False),
                source,
                whole=True,
                most=MOST_STEPS_PER_DAY,
            ),
            "stress": stress.mask(stress < 0),
            "no_data_code": stress < 0,
            "body_battery": numbers(
                _entry(battery_lists, source, "bodyBatteryStatType", "HIGHEST", "statsValue"), source, most=MOST_SCORE
            ),
        }
    )


def _sleep(records: list, source: Source) -> pd.DataFrame:
    """One night per record, on its ``calendarDate`` (the wake-up day): asleep stages in minutes."""
    stages = pd.concat([numbers(field(records, source, key, required=False), source) for key in STAGES], axis=1)
    return pd.DataFrame(
        {
            "day": days(field(records, source, "calendarDate"), source),
            "sleep_minutes": stages.sum(axis=1, min_count=1) / 60,
        }
    )


def _health(records: list, source: Source) -> pd.DataFrame:
    """The overnight HRV (ms) of each day's health status."""
    metrics = field(records, source, "metrics", required=False)
    return pd.DataFrame(
        {
            "day": days(field(records, source, "calendarDate"), source),
            "hrv": numbers(_entry(metrics, source, "type", "HRV", "value"), source, most=MOST_HRV_MS),
        }
    )


READERS: dict[str, Callable[[list, Source], pd.DataFrame]] = {"daily": _daily, "sleep": _sleep, "health": _health}


def _read(kind: str, file: Path) -> pd.DataFrame:
    return READERS[kind](json_list(file, read_json(file)), Source(file))


def _root(folder: Path) -> Path | None:
    """The ``DI_CONNECT`` folder of a person's export: the folder itself or its ``DI_CONNECT``."""
    for root in (folder / "DI_CONNECT", folder):
        if (root / AGGREGATOR).is_dir() or (root / WELLNESS).is_dir():
            return root
    return None


def _is_person_folder(folder: Path) -> bool:
    return folder.is_dir() and _root(folder) is not None


def _files(folder: Path) -> dict[str, list[Path]]:
    root = _root(folder)
    return {kind: sorted((root / sub).glob(pattern)) for kind, (sub, pattern) in FILES.items()}


def _read_person(files: dict[str, list[Path]], person_id: str, notes: list[str], advance) -> pd.DataFrame:
    """One person's daily rows, with one note per channel: what was read and what left out."""
    kinds = {
        kind: read_files(kind_files, lambda file, kind=kind: _read(kind, file), advance)
        for kind, kind_files in files.items()
    }
    channels = {}
    for channel, kind in CHANNELS.items():
        frame, pattern = kinds[kind], FILES[kind][1]
        if frame is None:
            notes.append(f"{person_id}: {channel}: no {pattern} file, left empty")
            channels[channel] = no_values()
            continue
        channels[channel] = first_per_day(frame, channel)
        left_out = {"repeated_days_counted_once": repeated_days(frame)}
        if channel == "stress":
            left_out["no-data_codes_-1/-2_left_empty"] = int(frame["no_data_code"].sum())
        if channel == "sleep_minutes":
            left_out["records_without_sleep_stages"] = int(frame[channel].isna().sum())
        note = channel_note(person_id, channel, channels[channel], len(frame), files[kind], pattern, **left_out)
        notes.append(note)
    return person_rows(channels, person_id)


def read_garmin_export(path: Path, progress: bool | Progress | None = None) -> ImportResult:
    """Read a Garmin export: one person's unpacked export (the folder holding ``DI_CONNECT``, or
    ``DI_CONNECT`` itself), or one sub-folder per person (pseudonymous ids, see
    :mod:`~synthwear.default_plugins.export_folders`).

    Returns the daily table ``person_id, date, resting_hr, sleep_minutes, steps, stress,
    body_battery, hrv`` sorted by person and date, with one note per person and channel and per
    skipped sub-folder. ``progress`` shows a bar over the files when there are many.
    """
    expected = f"DI_CONNECT/{AGGREGATOR} or DI_CONNECT/{WELLNESS}"
    return import_persons(path, (_is_person_folder, expected, _files), _read_person, list(CHANNELS), progress)


class GarminExportImporter:
    """The ``garmin`` importer the engine finds through the ``register_importers`` hook."""

    description = "Garmin account export: DI_CONNECT UDSFile_*.json, *_sleepData.json, *_healthStatusData.json"

    def __call__(self, path: Path, progress: bool | Progress | None = True) -> ImportResult:
        """Import ``path`` (see :func:`read_garmin_export`), with a bar over the files when there are many."""
        return read_garmin_export(path, progress)


@hookimpl
def register_importers(register):
    """Offer the importer as ``garmin`` (``synthwear import garmin``, ``data: {importer: garmin}``)."""
    register("garmin", GarminExportImporter())
