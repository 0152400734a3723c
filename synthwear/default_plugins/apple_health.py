"""Import an Apple Health export (``export.zip`` or ``export.xml``) as the engine's tidy daily table.

The Health app exports every sample ever written to HealthKit as one ``<Record>`` per sample, with
its own time zone offset (``startDate="2023-03-26 01:30:00 +0100"``) and the app or device that
wrote it. An iPhone and an Apple Watch both count the same steps, and a watch and a sleep app both
log the same night, so summing records would count much of the day twice. The rules below turn the
records into one row per person-day (NaN = missing), read with expat in 1 MiB chunks straight from
the zip member, so a multi-gigabyte export never sits in memory: only the records of the types read
stay, as 36 bytes each. A generated 238 MB export (546,612 records, 1,111 days) imports in about 9 s
at a peak of 48 MiB above the interpreter's own; expat's parsing alone is half of that time
(``benchmarks/import_apple_health.py``).

Days. A day is the LOCAL calendar day of the record, on the clock the record itself carries (never
the machine's): a record at 23:30 +0100 is on that day even if the same instant written at +0200 is
on the next. A record's start is read on its start's offset, its end and any midnight inside it on
its end's offset, so daylight-saving days (23 h, 25 h) and travel work without a time zone database.

Channels (always ``resting_hr``, ``sleep_minutes``, ``steps``; the others only when present):

- ``steps`` (HKQuantityTypeIdentifierStepCount, unit count): per instant ONE source counts, as in
  the Health app. Sources are ranked Apple Watch first, then by number of step records; each
  record counts only for the part of its time no higher-ranked source covers, pro rata (an iPhone
  record of 800 steps over 20 min, 15 of them covered by the watch, adds 200). A record spanning
  midnight is split across the days pro rata by time. Exact duplicate records count once.
- ``sleep_minutes`` (HKCategoryTypeIdentifierSleepAnalysis): minutes in the UNION of all sources'
  asleep records (Asleep, AsleepUnspecified, AsleepCore, AsleepDeep, AsleepREM), so overlapping
  minutes count once; InBed and Awake never count. Asleep time with gaps of up to 2 h is one sleep,
  credited to the day it ends on (the night's wake-up day, Apple's and Fitbit's "date of sleep").
  Unlike Fitbit's importer, daytime naps are not told apart: they count on their own day.
- ``resting_hr`` (RestingHeartRate, count/min), ``hrv_sdnn`` (HeartRateVariabilitySDNN, ms),
  ``spo2`` (OxygenSaturation, %), ``respiratory_rate`` (RespiratoryRate, count/min): the mean of
  the day's records (by start), over all sources; the watch writes one resting HR a day, and a
  second app's estimate is averaged in rather than picked by an arbitrary rule. Apple writes SpO2
  as a fraction with unit "%" (0.97): values up to 1 are multiplied by 100.

Partial days. The day the export was written (its ``ExportDate``) is cut off by the export, so its
row is dropped, with a note. The first day is kept: it cannot be told from a quiet day.

Notes name sources by kind (Apple Watch, iPhone, other app), never by their names, which carry the
owner's name ("Alex's iPhone"); person ids are pseudonyms (see
:mod:`~synthwear.default_plugins.export_folders`). Bad input raises
:class:`~synthwear.errors.SynthwearError` with one line naming the file and line.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import BinaryIO
from xml.parsers import expat

import numpy as np
import pandas as pd

from synthwear.default_plugins.export_records import (
    MOST_BREATHS_PER_MINUTE,
    MOST_HEART_RATE,
    MOST_HRV_MS,
    MOST_STEPS_PER_MINUTE,
    import_persons,
    no_values,
    person_rows,
)
from synthwear.errors import SynthwearError, one_line
from synthwear.hookspecs import hookimpl
from synthwear.interfaces import ImportResult
from synthwear.progress import feedback

DAY = 86_400  # seconds
SLEEP_GAP = 2 * 3600  # asleep stretches at most this far apart are one sleep (awake spells in a night)
CHUNK = 1 << 20  # bytes handed to the parser at a time
PROGRESS_BYTES = 64 << 20  # exports at least this large show a progress bar
EXAMPLE_DATE = "2023-03-26 01:30:00 +0100"
EXPECTED = "export.zip, export.xml or apple_health_export/export.xml"
# where a person's export may lie in their folder, in order of preference (one only: never both)
EXPORT_NAMES = ("export.xml", "apple_health_export/export.xml", "export.zip")

STEPS = "HKQuantityTypeIdentifierStepCount"
SLEEP = "HKCategoryTypeIdentifierSleepAnalysis"
ASLEEP = frozenset(
    "HKCategoryValueSleepAnalysis" + stage
    for stage in ("Asleep", "AsleepUnspecified", "AsleepCore", "AsleepDeep", "AsleepREM")
)
NOT_ASLEEP = {"HKCategoryValueSleepAnalysisInBed": "in-bed", "HKCategoryValueSleepAnalysisAwake": "awake"}


def _percent(values: np.ndarray) -> np.ndarray:
    """Apple's fractions (0.97) as percent; values above 1 were already written as percent."""
    return np.where(values <= 1.0, values * 100.0, values)


def _same(values: np.ndarray) -> np.ndarray:
    return values


# HealthKit type -> (channel, the unit Apple writes, conversion); daily mean of the day's records
DAILY_MEANS: dict[str, tuple[str, str, Callable[[np.ndarray], np.ndarray]]] = {
    "HKQuantityTypeIdentifierRestingHeartRate": ("resting_hr", "count/min", _same),
    "HKQuantityTypeIdentifierHeartRateVariabilitySDNN": ("hrv_sdnn", "ms", _same),
    "HKQuantityTypeIdentifierOxygenSaturation": ("spo2", "%", _percent),
    "HKQuantityTypeIdentifierRespiratoryRate": ("respiratory_rate", "count/min", _same),
}
# every type read: HealthKit type -> (channel, unit or None for a category type)
WANTED = {
    STEPS: ("steps", "count"),
    SLEEP: ("sleep_minutes", None),
    **{kind: (channel, unit) for kind, (channel, unit, _) in DAILY_MEANS.items()},
}
# what no body does, per record of a daily mean's channel (Apple's SpO2 fractions, 0.97, are below 100 too)
MOST_PER_RECORD = {
    "resting_hr": (MOST_HEART_RATE, "bpm"),
    "hrv_sdnn": (MOST_HRV_MS, "ms"),
    "spo2": (100, "%"),
    "respiratory_rate": (MOST_BREATHS_PER_MINUTE, "breaths a minute"),
}
CORE = ("resting_hr", "sleep_minutes", "steps")  # always columns, in this order
EXTRA = ("hrv_sdnn", "spo2", "respiratory_rate")  # columns only when some person has records


class Samples:
    """One channel's records as compact parallel arrays: an export holds millions of them."""

    def __init__(self) -> None:
        self.start, self.end = array("d"), array("d")  # UTC, seconds since 1970
        self.start_offset, self.end_offset = array("i"), array("i")  # seconds east of UTC
        self.value, self.source = array("d"), array("i")  # source: index into the export's sources

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({name: np.asarray(column) for name, column in vars(self).items()})


class ExportReader:
    """The expat handlers that keep the records of the wanted types, and one-line errors that
    name the record's line (expat knows it while a handler runs; iterparse would not)."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.parser = expat.ParserCreate()
        self.parser.StartElementHandler = self._start
        self.samples = {channel: Samples() for channel, _ in WANTED.values()}
        self.sources: dict[str, int] = {}  # source name -> index (names stay in here)
        self.kinds: list[str] = []  # per source index: "Apple Watch", "iPhone" or "other app"
        self.not_asleep: Counter[str] = Counter()
        self.exported: tuple[float, int] | None = None  # ExportDate: UTC seconds, offset

    def error(self, problem: str) -> SynthwearError:
        return SynthwearError(f"{self.where}: line {self.parser.CurrentLineNumber}: {problem}")

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        if name == "Record":
            wanted = WANTED.get(attrs.get("type"))
            if wanted is not None:
                self._record(*wanted, attrs)
        elif name == "ExportDate":
            self.exported = self._instant(attrs, "value")

    def _record(self, channel: str, unit: str | None, attrs: dict[str, str]) -> None:
        if unit is not None and attrs.get("unit") != unit:
            raise self.error(f"'unit' is {attrs.get('unit')!r}, expected {unit!r} for {attrs['type']}")
        start, start_offset = self._instant(attrs, "startDate")
        end, end_offset = self._instant(attrs, "endDate")
        if end < start:
            raise self.error(f"'endDate' is before 'startDate' ({attrs['endDate']!r})")
        value = self._sleep_value(attrs) if unit is None else self._number(attrs)
        if value is None:
            return
        self._refuse_what_no_body_does(channel, value, (end - start) / 60, attrs)
        samples = self.samples[channel]
        samples.start.append(start)
        samples.end.append(end)
        samples.start_offset.append(start_offset)
        samples.end_offset.append(end_offset)
        samples.value.append(value)
        samples.source.append(self._source(attrs))

    def _instant(self, attrs: dict[str, str], key: str) -> tuple[float, int]:
        """``2023-03-26 01:30:00 +0100`` as UTC seconds and the offset in seconds."""
        text = attrs.get(key)
        if text is None:
            raise self.error(f"no '{key}' attribute")
        try:
            if len(text) != 25 or text[19] != " ":
                raise ValueError(text)
            moment = datetime.fromisoformat(f"{text[:19]}{text[20:23]}:{text[23:]}")  # 3.10 needs +01:00
            return moment.timestamp(), int(moment.utcoffset().total_seconds())
        except (ValueError, AttributeError):  # AttributeError: no offset at all
            raise self.error(f"'{key}' is not a date like {EXAMPLE_DATE} ({_shown(text)})") from None

    def _number(self, attrs: dict[str, str]) -> float:
        """A record's value: a finite number >= 0, as every quantity the importer reads is (Python's
        float() would also take 'nan', 'inf' and '-5')."""
        try:
            value = float(attrs["value"])
        except KeyError:
            raise self.error("no 'value' attribute") from None
        except ValueError:
            raise self.error(f"'value' is not a number ({_shown(attrs['value'])})") from None
        if not np.isfinite(value) or value < 0:
            raise self.error(f"'value' is not a finite number >= 0 ({_shown(attrs['value'])})")
        return value

    def _refuse_what_no_body_does(self, channel: str, value: float, minutes: float, attrs: dict[str, str]) -> None:
        """The bounds the other importers have: a resting HR above 300 bpm, HRV above 1,000 ms, SpO2
        above 100%, more than 150 breaths or 1,000 steps a minute (over the record's time; an instant
        counts as a minute)."""
        if channel in MOST_PER_RECORD and value > MOST_PER_RECORD[channel][0]:
            most, unit = MOST_PER_RECORD[channel]
            raise self.error(f"'value' is more than {most:g} {unit}, which no body does ({_shown(attrs['value'])})")
        if channel == "steps" and value > MOST_STEPS_PER_MINUTE * max(minutes, 1.0):
            raise self.error(
                f"'value' is more than {MOST_STEPS_PER_MINUTE:,} steps a minute over the record's time, which no "
                f"body does ({_shown(attrs['value'])})"
            )

    def _sleep_value(self, attrs: dict[str, str]) -> float | None:
        """1 for an asleep record; None (counted, not kept) for in bed or awake."""
        value = attrs.get("value")
        if value in ASLEEP:
            return 1.0
        if value in NOT_ASLEEP:
            self.not_asleep[NOT_ASLEEP[value]] += 1
            return None
        raise self.error(f"'value' is not a sleep analysis value ({_shown(value)})")

    def _source(self, attrs: dict[str, str]) -> int:
        name = attrs.get("sourceName", "")
        index = self.sources.get(name)
        if index is None:
            index = self.sources[name] = len(self.kinds)
            self.kinds.append(_source_kind(name, attrs.get("device", "")))
        return index


def _shown(text: str | None) -> str:
    """An attribute's text quoted for an error message, shortened to keep it on one line."""
    return repr(text if text is None or len(text) <= 60 else f"{text[:57]}...")


def _source_kind(name: str, device: str) -> str:
    """What wrote a record, without its owner's name ("Alex's Apple Watch" -> "Apple Watch")."""
    if "model:Watch" in device or "Watch" in name:
        return "Apple Watch"
    if "model:iPhone" in device or "iPhone" in name:
        return "iPhone"
    return "other app"


# --- reading the file ----------------------------------------------------------------------------

DOCTYPE = re.compile(rb"<!DOCTYPE[^\[>]*\[.*?\]>", re.DOTALL)


def _without_doctype(head: bytes) -> bytes:
    """The export's first chunk with its internal DTD blanked out (newlines kept, so parser lines
    stay file lines): exports of iOS 16 ship a DTD that is not valid XML, and none of it is needed."""
    return DOCTYPE.sub(lambda match: b"\n" * match.group().count(b"\n"), head, count=1)


def _chunks(stream: BinaryIO, advance: Callable[..., None]) -> Iterator[bytes]:
    """The stream in chunks for the parser; vertical tabs, which some exports contain but XML
    forbids, become spaces."""
    first = True
    while chunk := stream.read(CHUNK):
        advance(len(chunk) / CHUNK)
        if first:
            chunk, first = _without_doctype(chunk), False
        yield chunk.replace(b"\x0b", b" ")


def _parse(stream: BinaryIO, size: int, where: str, label: str) -> ExportReader:
    """Stream one export.xml through expat; a progress bar (MiB) when the file is large."""
    reader = ExportReader(where)
    try:
        with feedback(size >= PROGRESS_BYTES) as say:
            advance = say.task(f"{label}: reading export (MiB)", round(size / CHUNK))
            for chunk in _chunks(stream, advance):
                reader.parser.Parse(chunk, False)
            reader.parser.Parse(b"", True)
    except expat.ExpatError as error:
        raise SynthwearError(f"{where}: not valid XML ({error})") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise SynthwearError(f"{where}: cannot read ({error})") from None
    return reader


def _zip_member(archive: zipfile.ZipFile, file: Path) -> zipfile.ZipInfo:
    """The export inside Apple's zip: ``export.xml``, or under a localised name the one XML file
    next to it whose root is HealthData (``export_cda.xml`` is a clinical document, not the data)."""
    xml = [info for info in archive.infolist() if info.filename.lower().endswith(".xml")]
    found = [info for info in xml if PurePosixPath(info.filename).name == "export.xml"]
    if not found:
        shallow = [info for info in xml if len(PurePosixPath(info.filename).parts) <= 2]
        found = [info for info in shallow if _is_health_data(archive, info)]
    if len(found) != 1:
        names = ", ".join(info.filename for info in found) or "none"
        raise SynthwearError(f"{file}: expected one Apple Health export.xml in the zip, found {names}")
    return found[0]


def _is_health_data(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bool:
    with archive.open(info) as stream:
        return b"<HealthData" in stream.read(1 << 16)


def _read_export(file: Path, label: str) -> ExportReader:
    """The wanted records of one export.xml, or of the export inside a zip (never extracted)."""
    if file.suffix.lower() != ".zip":
        try:
            with file.open("rb") as stream:
                return _parse(stream, file.stat().st_size, str(file), label)
        except OSError as error:
            raise SynthwearError(f"{file}: cannot read ({error.strerror})") from None
    try:
        with zipfile.ZipFile(file) as archive:
            member = _zip_member(archive, file)
            with archive.open(member) as stream:
                return _parse(stream, member.file_size, f"{file}/{member.filename}", label)
    except (OSError, zipfile.BadZipFile) as error:
        raise SynthwearError(f"{file}: not a readable zip file ({error})") from None
    except (RuntimeError, NotImplementedError) as error:  # an encrypted member, a compression zipfile lacks
        raise SynthwearError(f"{file}: cannot unpack ({one_line(error)}); unzip it and import the folder") from None


def _export_file(path: Path) -> Path | None:
    """The export a path stands for: the file itself, or the one found in the folder."""
    if path.is_file():
        return path if path.suffix.lower() in (".xml", ".zip") else None
    return next((path / name for name in EXPORT_NAMES if (path / name).is_file()), None)


# --- intervals -----------------------------------------------------------------------------------


def _union(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint sorted blocks covering the same time as the intervals."""
    if len(starts) == 0:
        return starts, ends
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], ends[order]
    reach = np.maximum.accumulate(ends)
    new = np.r_[True, starts[1:] > reach[:-1]]
    return starts[new], np.maximum.reduceat(ends, np.flatnonzero(new))


def _covered_before(moments: np.ndarray, blocks: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Time the blocks cover before each moment, and whether the moment lies inside a block."""
    starts, ends = blocks
    if len(starts) == 0:
        return np.zeros(len(moments)), np.zeros(len(moments), dtype=bool)
    before = np.r_[0.0, np.cumsum(ends - starts)]
    k = np.searchsorted(starts, moments, side="right") - 1  # last block starting at or before
    last = np.maximum(k, 0)
    partial = np.clip(moments - starts[last], 0.0, ends[last] - starts[last])
    return np.where(k >= 0, before[last] + partial, 0.0), (k >= 0) & (moments < ends[last])


def _day_pieces(records: pd.DataFrame) -> pd.DataFrame:
    """Each record cut at local midnights: its local day, piece [a, b) in UTC, and record row.
    The record's last day is read on its end's offset (a 25-hour DST day stays one day). Clocks
    change in the small hours, after midnight: the first midnight inside a record is on its start's
    offset, later ones on its end's."""
    start, end = records["start"].to_numpy(), records["end"].to_numpy()
    start_offset, end_offset = records["start_offset"].to_numpy(), records["end_offset"].to_numpy()
    first = np.floor((start + start_offset) / DAY).astype(np.int64)
    last = np.maximum(first, np.ceil((end + end_offset) / DAY).astype(np.int64) - 1)
    count = last - first + 1
    row = np.repeat(np.arange(len(records)), count)
    day = first[row] + np.arange(len(row)) - np.repeat(np.cumsum(count) - count, count)

    def midnight(local_day: np.ndarray) -> np.ndarray:  # the UTC instant a local day of the record begins
        return local_day * DAY - np.where(local_day == first[row] + 1, start_offset[row], end_offset[row])

    a = np.where(day == first[row], start[row], np.clip(midnight(day), start[row], end[row]))
    b = np.where(day == last[row], end[row], np.clip(midnight(day + 1), a, end[row]))
    return pd.DataFrame({"row": row, "day": day, "a": a, "b": b})


# --- channels ------------------------------------------------------------------------------------


def _priority(records: pd.DataFrame, kinds: list[str]) -> list[int]:
    """Sources in the order they count: Apple Watch first, then by number of records (then by first
    appearance), so the device worn all day wins over the phone left on the desk."""
    counts = records["source"].value_counts()
    return sorted(counts.index, key=lambda source: (kinds[source] != "Apple Watch", -counts[source], source))


def _steps(records: pd.DataFrame, kinds: list[str], person_id: str) -> tuple[pd.Series, str]:
    """Daily steps with each instant counted from one source (see the module docstring)."""
    unique = records.drop_duplicates(ignore_index=True)
    blocks = (np.empty(0), np.empty(0))
    daily, overlapping, order = [], 0, _priority(unique, kinds)
    for source in order:
        mine = unique[unique["source"] == source].reset_index(drop=True)
        pieces = _day_pieces(mine)
        covered_a, _ = _covered_before(pieces["a"].to_numpy(), blocks)
        covered_b, inside = _covered_before(pieces["b"].to_numpy(), blocks)
        covered = covered_b - covered_a
        length = (mine["end"] - mine["start"]).to_numpy()[pieces["row"]]  # the whole record's
        free = (pieces["b"] - pieces["a"]).to_numpy() - covered
        share = np.where(length > 0, free / np.where(length > 0, length, 1.0), ~inside)  # instants: in or out
        counted = mine["value"].to_numpy()[pieces["row"]] * share
        overlapped = np.where(length > 0, covered > 0, inside)
        overlapping += pieces["row"][overlapped].nunique()
        daily.append(pd.Series(counted).groupby(pieces["day"]).sum())
        blocks = _union(np.r_[blocks[0], mine["start"]], np.r_[blocks[1], mine["end"]])
    steps = pd.concat(daily).groupby(level=0).sum()
    twice = unique["value"].sum() - steps.sum()
    note = (
        f"{person_id}: steps: {_count(len(records), 'record')} from {_sources(order, kinds)} in that priority; "
        f"{overlapping:,} overlapped a higher-priority source and counted only outside it "
        f"({twice:,.0f} steps not counted twice)"
    )
    duplicates = len(records) - len(unique)
    return steps, note + (f"; {_count(duplicates, 'exact duplicate record')} counted once" if duplicates else "")


def _sleep_minutes(records: pd.DataFrame, kinds: list[str], skipped: Counter, person_id: str) -> tuple[pd.Series, str]:
    """Minutes in the union of asleep records per sleep, on the day the sleep ends."""
    records = records.sort_values("start", kind="stable", ignore_index=True)
    start, end = records["start"].to_numpy(), records["end"].to_numpy()
    reach = np.maximum.accumulate(end)
    before = np.r_[-np.inf, reach[:-1]]
    block = np.cumsum(start > before)  # a block: overlapping or touching records
    sleep = np.cumsum(start > before + SLEEP_GAP)  # a sleep: blocks less than SLEEP_GAP apart
    ender = np.maximum.accumulate(np.where(end >= reach, np.arange(len(end)), 0))  # record reaching `reach`
    wake = np.floor((reach + records["end_offset"].to_numpy()[ender]) / DAY).astype(np.int64)
    table = pd.DataFrame({"block": block, "sleep": sleep, "start": start, "reach": reach, "wake": wake})
    blocks = table.groupby("block").agg(sleep=("sleep", "first"), start=("start", "first"), end=("reach", "last"))
    minutes = ((blocks["end"] - blocks["start"]) / 60).groupby(blocks["sleep"]).sum()
    per_day = minutes.groupby(table.groupby("sleep")["wake"].last()).sum()
    overlap = ((end - start).sum() / 60) - minutes.sum()
    not_counted = ", ".join(f"{count:,} {what}" for what, count in sorted(skipped.items())) or "none"
    order = _priority(records, kinds)
    note = (
        f"{person_id}: sleep_minutes: {_count(len(records), 'asleep record')} from {_sources(order, kinds)}; "
        f"{overlap:,.0f} overlapping minutes counted once; {_count(len(minutes), 'sleep')} on {_count(len(per_day), 'day')}; "
        f"in-bed and awake records not counted ({not_counted})"
    )
    return per_day, note


def _daily_mean(records: pd.DataFrame, convert: Callable[[np.ndarray], np.ndarray]) -> tuple[pd.Series, int]:
    """The mean of each local day's values (by the records' starts), and how many days had several."""
    day = np.floor((records["start"] + records["start_offset"]).to_numpy() / DAY).astype(np.int64)
    per_day = pd.Series(convert(records["value"].to_numpy()), index=day).groupby(level=0)
    return per_day.mean(), int((per_day.size() > 1).sum())


def _sources(order: list[int], kinds: list[str]) -> str:
    return f"{_count(len(order), 'source')} ({', '.join(kinds[source] for source in order)})"


def _count(number: int, thing: str) -> str:
    return f"{number:,} {thing}{'' if number == 1 else 's'}"


# --- persons -------------------------------------------------------------------------------------


def _channels(reader: ExportReader, person_id: str, notes: list[str]) -> dict[str, pd.Series]:
    """Every channel with records, by day number; notes on what was merged, skipped or missing."""
    channels = {}
    for kind, (channel, _) in WANTED.items():
        records = reader.samples[channel].frame()
        if records.empty:
            if channel in CORE:
                notes.append(f"{person_id}: no {kind} records, {channel} left empty")
            continue
        if channel == "steps":
            channels[channel], note = _steps(records, reader.kinds, person_id)
        elif channel == "sleep_minutes":
            channels[channel], note = _sleep_minutes(records, reader.kinds, reader.not_asleep, person_id)
        else:
            channels[channel], several = _daily_mean(records, DAILY_MEANS[kind][2])
            note = (
                f"{person_id}: {channel}: {_count(len(records), 'record')} on {_count(len(channels[channel]), 'day')}"
                f" ({_count(several, 'day')} with several values: their mean)"
            )
        notes.append(note)
    return channels


def _dated(per_day: pd.Series, person_id: str, channel: str) -> pd.Series:
    """A channel indexed by day number (days since 1970-01-01) indexed by date instead."""
    try:
        return per_day.set_axis(pd.to_datetime(per_day.index.to_numpy(dtype=np.int64), unit="D"))
    except pd.errors.OutOfBoundsDatetime:
        raise SynthwearError(
            f"{person_id}: {channel} has records dated outside 1677-09-22..2262-04-11, the dates a table can hold"
        ) from None


def _without_export_day(rows: pd.DataFrame, reader: ExportReader, person_id: str, notes: list[str]) -> pd.DataFrame:
    """Drop the day the export was written (and any later day): the export cut it off."""
    if reader.exported is None:
        notes.append(f"{person_id}: no ExportDate in the export, its last day is kept and may be partial")
        return rows
    moment, offset = reader.exported
    export_day = pd.Timestamp(int((moment + offset) // DAY), unit="D")
    cut = rows["date"] >= export_day
    if cut.any():
        notes.append(
            f"{person_id}: {export_day.date()} dropped, the export was written that day (the day is incomplete)"
        )
    return rows[~cut]


def _files(path: Path) -> dict[str, list[Path]]:
    return {"export": [_export_file(path)]}


def _read_person(files: dict[str, list[Path]], person_id: str, notes: list[str], advance) -> pd.DataFrame:
    """One person's daily rows (days with at least one channel); the core channels always, the
    others when the export has their records."""
    reader = _read_export(files["export"][0], person_id)
    advance()
    channels = {name: _dated(per_day, person_id, name) for name, per_day in _channels(reader, person_id, notes).items()}
    present = [*CORE, *(name for name in EXTRA if name in channels)]
    rows = person_rows({name: channels.get(name, no_values()) for name in present}, person_id)
    return _without_export_day(rows, reader, person_id, notes)


def read_apple_health(path: Path) -> ImportResult:
    """Read Apple Health exports: ``export.zip`` or ``export.xml`` (or a folder holding one), or a
    folder with one export or sub-folder per person (pseudonymous ids, see
    :mod:`~synthwear.default_plugins.export_folders`).

    Returns the daily table ``person_id, date, resting_hr, sleep_minutes, steps`` (then
    ``hrv_sdnn``, ``spo2``, ``respiratory_rate`` when the exports have them) sorted by person and
    date, and one note per person and channel saying what was read, merged and left out. A large
    export shows its own bar (MiB read), so the importer takes no ``progress``.
    """
    found = (lambda entry: _export_file(entry) is not None, EXPECTED, _files)
    return import_persons(path, found, _read_person, [*CORE, *EXTRA], None)


class AppleHealthImporter:
    """The ``apple_health`` importer the engine finds through the ``register_importers`` hook."""

    description = "Apple Health export: export.zip or export.xml per person (steps, sleep, resting HR, HRV, SpO2)"

    def __call__(self, path: Path) -> ImportResult:
        """Import ``path`` (see :func:`read_apple_health`)."""
        return read_apple_health(path)


@hookimpl
def register_importers(register):
    """Offer the importer as ``apple_health`` (``synthwear import apple_health``, ``data: {importer: apple_health}``)."""
    register("apple_health", AppleHealthImporter())
