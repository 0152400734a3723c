"""Import Oura ring data as the engine's tidy daily table: documents saved from the Oura API v2
(``sleep``, ``daily_activity``, ``daily_readiness``) and the trends CSV of Oura's data export.

Oura keeps one document per sleep period (naps and rests included) and one per day for activity and
readiness. This module turns them into one row per person-day:

- ``sleep_minutes``: ``total_sleep_duration`` (seconds, time asleep) / 60 of the day's main sleep,
  the period of type ``long_sleep``. Naps (``late_nap``), short sleeps (``sleep``), rests and
  deleted periods are left out. When a day has several long sleeps (a night broken by a long
  wake), their minutes are summed. The day is Oura's ``day``, the day the sleep ended.
- ``resting_hr``: the LOWEST heart rate of the main sleep (``lowest_heart_rate``), which is what
  Oura reports as resting heart rate; it is not ``average_heart_rate`` (the night's mean, several
  bpm higher). With several long sleeps, the lowest of them.
- ``steps``: ``steps`` of ``daily_activity``.
- ``readiness``: the readiness ``score`` (0-100) of ``daily_readiness``.
- ``temperature_deviation``: ``temperature_deviation`` (°C from the person's baseline) of
  ``daily_readiness``.

API documents are files named after their endpoint (``sleep.json``, ``daily_activity.json``,
``daily_readiness.json``), each the response ``{"data": [...], "next_token": ...}``; further pages
go in ``sleep_2.json`` and so on. A document repeated across pages or files (same ``id``) counts
once. The trends CSV (``oura_*_trends.csv``, one row per day) gives the same channels from its
columns ``Total Sleep Duration`` (seconds), ``Lowest Resting Heart Rate``, ``Steps``,
``Readiness Score`` and ``Temperature Deviation (°C)``; older exports that name durations
differently leave those channels empty with a note. Where both kinds of file give a day, the API
document's value is kept. A day given twice by one kind counts once (first in file-name order).

Absent or null values are missing; a value that is there and is not a number, negative steps or
durations, or a document without ``id`` or ``day`` stops the import with one line naming the file
and the record (or CSV line).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
from rich.progress import Progress

from synthwear.default_plugins.export_records import (
    MOST_HEART_RATE,
    MOST_SCORE,
    MOST_STEPS_PER_DAY,
    Source,
    channel_note,
    csv_source,
    days,
    field,
    first_per_day,
    import_persons,
    no_values,
    numbers,
    person_rows,
    read_csv,
    read_files,
    read_json,
    reject_first,
    repeated_days,
)
from synthwear.errors import SynthwearError
from synthwear.hookspecs import hookimpl
from synthwear.interfaces import ImportResult

MAIN_SLEEP = "long_sleep"  # Oura's type of a main sleep; sleep, late_nap, rest and deleted are not
TRENDS = "oura_*_trends.csv"
COLUMNS = {  # channel -> trends CSV column; the order is the order of the output's columns
    "resting_hr": "Lowest Resting Heart Rate",
    "sleep_minutes": "Total Sleep Duration",
    "steps": "Steps",
    "readiness": "Readiness Score",
    "temperature_deviation": "Temperature Deviation (°C)",
}
MOST_TEMPERATURE_DEVIATION = 10  # °C from one's own baseline, either way: no living body is further off
RULES = {  # channel -> how its numbers are checked (``numbers``): what no body does is refused
    "resting_hr": {"most": MOST_HEART_RATE},
    "steps": {"whole": True, "most": MOST_STEPS_PER_DAY},
    "readiness": {"most": MOST_SCORE},
    "temperature_deviation": {"least": -MOST_TEMPERATURE_DEVIATION, "most": MOST_TEMPERATURE_DEVIATION},
}
ENDPOINTS = {  # channel -> the API endpoint whose documents give it
    "resting_hr": "sleep",
    "sleep_minutes": "sleep",
    "steps": "daily_activity",
    "readiness": "daily_readiness",
    "temperature_deviation": "daily_readiness",
}


def _documents(file: Path) -> tuple[list, Source]:
    """The ``data`` list of one saved API response."""
    document = read_json(file)
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        found = f"a JSON {type(document).__name__}" + (" without a 'data' list" if isinstance(document, dict) else "")
        raise SynthwearError(f'{file}: expected an Oura API response {{"data": [...]}}, found {found}')
    return document["data"], Source(file)


def checked(values: pd.Series, source: Source, channel: str) -> pd.Series:
    """A channel's numbers, checked by its ``RULES``."""
    return numbers(values, source, **RULES.get(channel, {}))


def _ids(records: list, source: Source) -> pd.Series:
    """Each document's ``id``, by which repeats count once: text, as Oura writes it (an object or a
    number would be compared as whatever Python makes of it)."""
    ids = field(records, source, "id")
    reject_first(~ids.map(lambda value: isinstance(value, str)).astype(bool), ids, source, "is not text")
    return ids


def _sleep(records: list, source: Source) -> pd.DataFrame:
    """One row per sleep period: its day, whether it is a main sleep, minutes asleep, lowest HR."""
    kinds = field(records, source, "type", required=False)  # null: not a main sleep
    return pd.DataFrame(
        {
            "id": _ids(records, source),
            "day": days(field(records, source, "day"), source),
            "main": kinds.eq(MAIN_SLEEP).to_numpy(),
            "sleep_minutes": numbers(field(records, source, "total_sleep_duration", required=False), source) / 60,
            "resting_hr": checked(field(records, source, "lowest_heart_rate", required=False), source, "resting_hr"),
        }
    )


def _activity(records: list, source: Source) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": _ids(records, source),
            "day": days(field(records, source, "day"), source),
            "steps": checked(field(records, source, "steps", required=False), source, "steps"),
        }
    )


def _readiness(records: list, source: Source) -> pd.DataFrame:
    deviation = field(records, source, "temperature_deviation", required=False)
    return pd.DataFrame(
        {
            "id": _ids(records, source),
            "day": days(field(records, source, "day"), source),
            "readiness": checked(field(records, source, "score", required=False), source, "readiness"),
            "temperature_deviation": checked(deviation, source, "temperature_deviation"),
        }
    )


READERS: dict[str, Callable[[list, Source], pd.DataFrame]] = {
    "sleep": _sleep,
    "daily_activity": _activity,
    "daily_readiness": _readiness,
}


def _trends(file: Path) -> pd.DataFrame:
    """The trends CSV's days, with a column per channel whose Oura column is there."""
    table, source = read_csv(file, ("date",)), csv_source(file)
    frame = pd.DataFrame({"day": days(table["date"], source)})
    for channel, column in COLUMNS.items():
        if column in table.columns:
            frame[channel] = checked(table[column], source, channel)
    if "sleep_minutes" in frame:
        frame["sleep_minutes"] = frame["sleep_minutes"] / 60  # the column is in seconds
    return frame


def _api_files(folder: Path, endpoint: str) -> list[Path]:
    """``sleep.json`` then its further pages ``sleep_*.json`` (not ``daily_sleep.json``)."""
    return sorted(folder.glob(f"{endpoint}.json")) + sorted(folder.glob(f"{endpoint}_*.json"))


def _files(folder: Path) -> dict[str, list[Path]]:
    return {**{endpoint: _api_files(folder, endpoint) for endpoint in READERS}, "trends": sorted(folder.glob(TRENDS))}


def _is_person_folder(folder: Path) -> bool:
    return folder.is_dir() and any(_files(folder).values())


def _main_sleep(frame: pd.DataFrame, channel: str) -> tuple[pd.Series, dict[str, int]]:
    """Per day, the long sleeps' minutes summed or their lowest heart rate; and what was left out."""
    main = frame[frame["main"]]
    grouped = main.groupby("day")[channel]
    per_day = grouped.sum(min_count=1) if channel == "sleep_minutes" else grouped.min()
    left_out = {
        "naps,_short_sleeps_and_rests_excluded": int((~frame["main"]).sum()),
        "days_with_several_long_sleeps": int((main.groupby("day").size() > 1).sum()),
    }
    return per_day, left_out


def _api_channel(frame: pd.DataFrame, channel: str) -> tuple[pd.Series, dict[str, int]]:
    """One channel from an endpoint's documents, each document (``id``) counted once."""
    unique = frame.drop_duplicates("id")
    left_out = {"repeated_documents_counted_once": len(frame) - len(unique)}
    if channel in ("sleep_minutes", "resting_hr"):
        per_day, more = _main_sleep(unique, channel)
        return per_day, {**left_out, **more}
    return first_per_day(unique, channel), {**left_out, "repeated_days_counted_once": repeated_days(unique)}


def _read_endpoint(endpoint: str, files: list[Path], advance) -> pd.DataFrame | None:
    return read_files(files, lambda file: READERS[endpoint](*_documents(file)), advance)


def _read_person(files: dict[str, list[Path]], person_id: str, notes: list[str], advance) -> pd.DataFrame:
    """One person's daily rows, with notes per channel and source: what was read, what left out."""
    api = {endpoint: _read_endpoint(endpoint, files[endpoint], advance) for endpoint in READERS}
    trends = read_files(files["trends"], _trends, advance)
    channels = {}
    for channel, endpoint in ENDPOINTS.items():
        per_day = no_values()
        if api[endpoint] is not None:
            per_day, left_out = _api_channel(api[endpoint], channel)
            records = len(api[endpoint])
            pattern = f"{endpoint}*.json"
            notes.append(channel_note(person_id, channel, per_day, records, files[endpoint], pattern, **left_out))
        if trends is not None and channel not in trends.columns:
            notes.append(f"{person_id}: {channel}: no '{COLUMNS[channel]}' column in {TRENDS}, not read from it")
        elif trends is not None:
            from_csv = first_per_day(trends, channel)
            repeated = repeated_days(trends)
            note = channel_note(
                person_id, channel, from_csv, len(trends), files["trends"], TRENDS, repeated_days_counted_once=repeated
            )
            notes.append(note)
            per_day = per_day.combine_first(from_csv) if len(per_day) else from_csv
        if api[endpoint] is None and trends is None:
            notes.append(f"{person_id}: {channel}: no {endpoint}.json and no {TRENDS}, left empty")
        channels[channel] = per_day
    return person_rows(channels, person_id)


def read_oura_export(path: Path, progress: bool | Progress | None = None) -> ImportResult:
    """Read Oura data: one person's folder of API documents and/or trends CSVs, or one sub-folder
    per person (pseudonymous ids, see :mod:`~synthwear.default_plugins.export_folders`).

    Returns the daily table ``person_id, date, resting_hr, sleep_minutes, steps, readiness,
    temperature_deviation`` sorted by person and date, with one note per person, channel and kind
    of file, and per skipped sub-folder. ``progress`` shows a bar over the files when there are many.
    """
    expected = f"sleep.json, daily_activity.json, daily_readiness.json or {TRENDS}"
    return import_persons(path, (_is_person_folder, expected, _files), _read_person, list(ENDPOINTS), progress)


class OuraExportImporter:
    """The ``oura`` importer the engine finds through the ``register_importers`` hook."""

    description = "Oura ring: API v2 sleep/daily_activity/daily_readiness JSON, or oura_*_trends.csv"

    def __call__(self, path: Path, progress: bool | Progress | None = True) -> ImportResult:
        """Import ``path`` (see :func:`read_oura_export`), with a bar over the files when there are many."""
        return read_oura_export(path, progress)


@hookimpl
def register_importers(register):
    """Offer the importer as ``oura`` (``synthwear import oura``, ``data: {importer: oura}``)."""
    register("oura", OuraExportImporter())
