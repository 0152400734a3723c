"""Import a Google Fit export (Google Takeout, ``Takeout/Fit``) as the engine's tidy daily table.

Takeout writes one row per day in ``Daily activity metrics/Daily activity metrics.csv``, one file of
15-minute rows per day beside it (``2024-03-01.csv``), and one JSON file per session in
``All Sessions`` (``<local start time>_SLEEP.json`` for sleep). This module turns them into one row
per person-day:

- ``steps``: the day's ``Step count``. A day missing from the daily file but present as a per-day
  file gets the sum of that file's 15-minute counts; the daily file wins where both have the day.
- ``heart_rate_mean`` and ``heart_rate_min``: ``Average heart rate (bpm)`` and ``Min heart rate
  (bpm)`` of the daily file (0 = no reading). They are all-day figures, not a resting heart rate.
- ``resting_hr``: always empty. Google Fit exports no resting heart rate, and the day's minimum is
  not one (it can be a single low reading during sleep, or an artefact), so none is made up; a
  note says so, and ``heart_rate_min`` is there for whoever wants it with its own name.
- ``sleep_minutes``: the asleep segments of the sleep sessions (``sleep``, ``sleep.light``,
  ``sleep.deep``, ``sleep.rem``; not ``sleep.awake`` or out of bed), summed per wake-up day: the
  local day on which the session ended, with the UTC offset that Takeout writes in the file's name.
  A session without segments counts from start to end. Segments that overlap (one repeated in
  several files, or crossing segments of one session) count each minute once. Fit does not mark
  naps, so a nap counts toward its day; a person without session files gets an empty channel and a
  note.

An empty cell is missing; a value that is there and is not a number, negative steps, a day not
written ``2024-03-01``, or a segment that ends before it starts stops the import with one line
naming the file and the line (CSV) or segment (JSON). Only the English file and column names are
read: Takeout translates them into the account's language.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pandas as pd
from rich.progress import Progress

from synthwear.default_plugins.export_records import (
    MOST_HEART_RATE,
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

DAILY, SESSIONS, SUMMARY = "Daily activity metrics", "All Sessions", "Daily activity metrics.csv"
SLEEP_FILES = "*_SLEEP.json"
PER_DAY = re.compile(r"\d{4}-\d{2}-\d{2}\.csv")
SLEEP_NAME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}_\d{2}_\d{2}(?:\.\d+)?(?P<offset>Z|[+-]\d{2}_\d{2})_SLEEP\.json")
ASLEEP = {"sleep", "sleep.light", "sleep.deep", "sleep.rem"}  # Fit's sleep stages other than awake/out of bed
COLUMNS = {
    "steps": "Step count",
    "heart_rate_mean": "Average heart rate (bpm)",
    "heart_rate_min": "Min heart rate (bpm)",
}
CHANNELS = ["resting_hr", "sleep_minutes", "steps", "heart_rate_mean", "heart_rate_min"]  # the output's order
NO_RESTING_HR = "Google Fit exports no resting heart rate, left empty (heart_rate_min is the day's lowest reading)"


def _summary(file: Path) -> pd.DataFrame:
    """The daily file's days, with a column per channel whose Fit column is there."""
    table, source = read_csv(file, ("Date",)), csv_source(file)
    frame = pd.DataFrame({"day": days(table["Date"], source)})
    for channel, column in COLUMNS.items():
        if column in table.columns:
            values = numbers(table[column], source, most=MOST_STEPS_PER_DAY if channel == "steps" else MOST_HEART_RATE)
            frame[channel] = values if channel == "steps" else values.mask(values == 0)
    return frame


def _per_day(file: Path) -> pd.DataFrame:
    """One day's steps from its 15-minute rows (the day is the file's name); no count at all is missing."""
    table = read_csv(file, ())
    column = COLUMNS["steps"]
    steps = numbers(table[column], csv_source(file)).sum(min_count=1) if column in table.columns else float("nan")
    try:
        day = pd.Timestamp(datetime.strptime(file.stem, "%Y-%m-%d"))
    except ValueError:  # 2024-02-30
        raise SynthwearError(f"{file}: the file name is not a date written YYYY-MM-DD") from None
    return pd.DataFrame({"day": [day], "steps": [steps]})


def _times(values: pd.Series, source: Source) -> pd.Series:
    """UTC instants written like ``2019-06-10T20:06:00Z`` (or with milliseconds)."""
    text = values.where(values.map(lambda value: isinstance(value, str)))
    parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    reject_first(parsed.isna(), values, source, "is not a time like 2019-06-10T20:06:00Z")
    return parsed


def _offset(file: Path) -> pd.Timedelta:
    """The local UTC offset Takeout writes in a session file's name (``..._00+02_00_SLEEP.json``)."""
    match = SLEEP_NAME.fullmatch(file.name)
    if match is None:
        raise SynthwearError(f"{file}: name is not <local start time, e.g. 2024-03-01T23_10_00+01_00>_SLEEP.json")
    offset = match["offset"]
    if offset == "Z":
        return pd.Timedelta(0)
    sign, hours, minutes = -1 if offset[0] == "-" else 1, int(offset[1:3]), int(offset[4:6])
    if hours > 14 or minutes > 59:  # the world's clocks run from UTC-12 to UTC+14
        raise SynthwearError(f"{file}: the UTC offset {offset} in the name is no clock's (at most 14_00)")
    return sign * pd.Timedelta(hours=hours, minutes=minutes)


def _session(file: Path) -> pd.DataFrame:
    """A sleep session's asleep stretches (segments, or the whole session) and its wake-up day."""
    session = read_json(file)
    if not isinstance(session, dict):
        raise SynthwearError(f"{file}: expected a session object, found a JSON {type(session).__name__}")
    whole = Source(file, "session")
    wake_day = (_times(field([session], whole, "endTime"), whole) + _offset(file)).dt.tz_localize(None).dt.normalize()
    segments = session.get("segment") or []
    if not isinstance(segments, list):
        raise SynthwearError(f"{file}: 'segment' is not a list")
    records, source = (segments, Source(file, "segment")) if segments else ([session], whole)
    kinds = field(records, source, "fitnessActivity")
    start, end = _times(field(records, source, "startTime"), source), _times(field(records, source, "endTime"), source)
    reject_first(end < start, field(records, source, "endTime"), source, "is before its startTime")
    return pd.DataFrame({"start": start, "end": end, "asleep": kinds.isin(ASLEEP), "day": wake_day.iloc[0]})


def _root(folder: Path) -> Path | None:
    """The ``Fit`` folder of a person's Takeout: ``Takeout/Fit``, ``Fit`` or the folder itself."""
    for root in (folder / "Takeout" / "Fit", folder / "Fit", folder):
        if (root / DAILY).is_dir() or (root / SESSIONS).is_dir():
            return root
    return None


def _is_person_folder(folder: Path) -> bool:
    return folder.is_dir() and _root(folder) is not None


def _files(folder: Path) -> dict[str, list[Path]]:
    daily, sessions = _root(folder) / DAILY, _root(folder) / SESSIONS
    return {
        "summary": [daily / SUMMARY] if (daily / SUMMARY).is_file() else [],
        "per_day": sorted(file for file in daily.glob("*.csv") if PER_DAY.fullmatch(file.name)),
        "sleep": sorted(sessions.glob(SLEEP_FILES)),
    }


def _sleep_minutes(files: list[Path], person_id: str, notes: list[str], advance) -> pd.Series:
    """Minutes asleep per wake-up day, each asleep minute counted once: segments that overlap (a
    session exported twice, segments of one session that cross) count their union."""
    segments = read_files(files, _session, advance)
    if segments is None:
        notes.append(f"{person_id}: sleep_minutes: no {SESSIONS}/{SLEEP_FILES}, left empty")
        return no_values()
    asleep = segments[segments["asleep"]].sort_values(["day", "start"], kind="stable")
    reached = asleep.groupby("day")["end"].cummax().groupby(asleep["day"]).shift()  # the day's earlier segments
    start = pd.concat([asleep["start"], reached], axis=1).max(axis=1)  # what they have not covered yet
    counted = (asleep["end"] - start).dt.total_seconds().clip(lower=0) / 60
    minutes = counted.groupby(asleep["day"]).sum()
    overlap = (asleep["end"] - asleep["start"]).dt.total_seconds().sum() / 60 - counted.sum()
    left_out = {"awake_segments": int((~segments["asleep"]).sum()), "overlapping_minutes_counted_once": round(overlap)}
    notes.append(channel_note(person_id, "sleep_minutes", minutes, len(segments), files, SLEEP_FILES, **left_out))
    return minutes


def _summary_channel(summary: pd.DataFrame | None, channel: str, files: list[Path], person_id: str, notes: list[str]):
    """One channel of the daily file per day, noting what was read (or that the column is absent)."""
    if summary is None or channel not in summary.columns:
        notes.append(f"{person_id}: {channel}: no '{COLUMNS[channel]}' in {DAILY}/{SUMMARY}")
        return no_values()
    values = first_per_day(summary, channel)
    repeated = {"repeated_days_counted_once": repeated_days(summary)}
    notes.append(channel_note(person_id, channel, values, len(summary), files, SUMMARY, **repeated))
    return values


def _daily_channels(files: dict[str, list[Path]], person_id: str, notes: list[str], advance) -> dict[str, pd.Series]:
    """Steps and heart rate per day from the daily file, and steps of days only in per-day files."""
    summary = read_files(files["summary"], _summary, advance)
    per_day = read_files(files["per_day"], _per_day, advance)
    channels = {channel: _summary_channel(summary, channel, files["summary"], person_id, notes) for channel in COLUMNS}
    if per_day is not None:
        extra = first_per_day(per_day, "steps").drop(channels["steps"].index, errors="ignore")
        only_here = {"days_not_in_the_daily_file": len(extra)}
        notes.append(
            channel_note(person_id, "steps", extra, len(per_day), files["per_day"], "YYYY-MM-DD.csv", **only_here)
        )
        channels["steps"] = pd.concat([channels["steps"], extra]).sort_index()
    return channels


def _read_person(files: dict[str, list[Path]], person_id: str, notes: list[str], advance) -> pd.DataFrame:
    """One person's daily rows, with one note per channel and kind of file."""
    notes.append(f"{person_id}: resting_hr: {NO_RESTING_HR}")
    channels = {"resting_hr": no_values(), "sleep_minutes": _sleep_minutes(files["sleep"], person_id, notes, advance)}
    channels.update(_daily_channels(files, person_id, notes, advance))
    return person_rows({channel: channels[channel] for channel in CHANNELS}, person_id)


def read_google_fit(path: Path, progress: bool | Progress | None = None) -> ImportResult:
    """Read a Google Fit Takeout: one person's unpacked Takeout (the folder holding ``Takeout/Fit``,
    or ``Takeout`` or ``Fit`` itself), or one sub-folder per person (pseudonymous ids, see
    :mod:`~synthwear.default_plugins.export_folders`).

    Returns the daily table ``person_id, date, resting_hr, sleep_minutes, steps, heart_rate_mean,
    heart_rate_min`` sorted by person and date (``resting_hr`` empty: Fit has none), with one note
    per person, channel and kind of file, and per skipped sub-folder. ``progress`` shows a bar over
    the files when there are many.
    """
    expected = f"Takeout/Fit/{DAILY} or Takeout/Fit/{SESSIONS}"
    return import_persons(path, (_is_person_folder, expected, _files), _read_person, CHANNELS, progress)


class GoogleFitImporter:
    """The ``google_fit`` importer the engine finds through the ``register_importers`` hook."""

    description = "Google Fit Takeout: Daily activity metrics CSVs, All Sessions *_SLEEP.json"

    def __call__(self, path: Path, progress: bool | Progress | None = True) -> ImportResult:
        """Import ``path`` (see :func:`read_google_fit`), with a bar over the files when there are many."""
        return read_google_fit(path, progress)


@hookimpl
def register_importers(register):
    """Offer the importer as ``google_fit`` (``synthwear import google_fit``, ``data: {importer: google_fit}``)."""
    register("google_fit", GoogleFitImporter())
