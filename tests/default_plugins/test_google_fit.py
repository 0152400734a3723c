"""The Google Fit importer: the hand-checked sample Takeout, and small written Takeouts for each
rule (no resting HR made up, asleep segments per wake-up day, repeats counted once, one-line errors)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pluggy
import pytest

from synthwear import hookspecs
from synthwear.default_plugins import google_fit
from synthwear.default_plugins.google_fit import GoogleFitImporter, read_google_fit
from synthwear.errors import SynthwearError
from synthwear.interfaces import Importer

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "google_fit_sample"
COLUMNS = ["person_id", "date", "resting_hr", "sleep_minutes", "steps", "heart_rate_mean", "heart_rate_min"]
HEADER = "Date,Calories (kcal),Average heart rate (bpm),Max heart rate (bpm),Min heart rate (bpm),Step count"


def write_person(
    folder: Path, summary: str | None = None, sessions: dict | None = None, per_day: dict | None = None
) -> Path:
    """Write one person's Takeout/Fit: the daily CSV text, session files by name, per-day CSVs by day."""
    fit = folder / "Takeout" / "Fit"
    (fit / "Daily activity metrics").mkdir(parents=True)
    (fit / "All Sessions").mkdir()
    if summary is not None:
        (fit / "Daily activity metrics" / "Daily activity metrics.csv").write_text(summary)
    for name, text in (per_day or {}).items():
        (fit / "Daily activity metrics" / f"{name}.csv").write_text(text)
    for name, session in (sessions or {}).items():
        (fit / "All Sessions" / name).write_text(json.dumps(session))
    return folder


def session(start: str, end: str, *segments: tuple[str, str, str]) -> dict:
    parts = [{"fitnessActivity": kind, "startTime": s, "endTime": e} for kind, s, e in segments]
    return {"fitnessActivity": "sleep", "startTime": start, "endTime": end, "segment": parts}


# --- the sample Takeout (synthetic values in Takeout's layout, see its README) ---------------


@pytest.fixture(scope="module")
def sample():
    return read_google_fit(SAMPLE)


def test_sample_table(sample):
    frame = sample.frame
    assert list(frame.columns) == COLUMNS
    # 2024-03-03 has only calories in the daily file: no channel, no row
    assert frame["date"].tolist() == list(pd.to_datetime(["2024-03-01", "2024-03-02", "2024-03-04"]))
    assert frame["resting_hr"].isna().all()  # Fit has none; Min heart rate is not used as one
    # 03-01 and 03-02 from the daily file (its 8123 also matches 3000 + 2500 + 2623 of 2024-03-01.csv);
    # 03-04 is only a per-day file: 412 + 388 + 1034 + 757 = 2591
    assert frame["steps"].tolist() == [8123, 10456, 2591]
    assert frame["heart_rate_mean"].fillna(-1).tolist() == [71.4, 69.8, -1]
    assert frame["heart_rate_min"].fillna(-1).tolist() == [52, 49, -1]
    # sleep, asleep segments per local wake-up day (UTC+01:00 from the file names):
    #   ends 2024-03-01T06:02Z = 07:02 local on 03-01: 90 light + 90 deep + 70 REM + 207 light = 457
    #     (the 15-min sleep.awake segment left out)
    #   ends 2024-03-02T06:20Z: 190 + 240 = 430 (20 min awake left out)
    #   ends 2024-03-04T05:15Z, no segments: 21:45 -> 05:15 = 450
    assert frame["sleep_minutes"].tolist() == [457, 430, 450]


def test_sample_notes(sample):
    assert sample.notes == [
        "person-1: resting_hr: Google Fit exports no resting heart rate, left empty (heart_rate_min is the day's lowest reading)",
        "person-1: sleep_minutes: 3 days with a value, from 9 records in 3 *_SLEEP.json files (awake segments: 2)",
        "person-1: steps: 2 days with a value, from 3 records in 1 Daily activity metrics.csv file",
        "person-1: heart_rate_mean: 2 days with a value, from 3 records in 1 Daily activity metrics.csv file",
        "person-1: heart_rate_min: 2 days with a value, from 3 records in 1 Daily activity metrics.csv file",
        "person-1: steps: 1 days with a value, from 2 records in 2 YYYY-MM-DD.csv files (days not in the daily file: 1)",
    ]


# --- written Takeouts, one rule each ---------------------------------------------------------


def test_sleep_is_on_the_local_wake_up_day_and_repeated_segments_count_once(tmp_path):
    # 2024-01-01T22:30Z -> 2024-01-02T03:30Z in UTC-05:00 ends at 22:30 local on 2024-01-01
    night = session(
        "2024-01-01T22:30:00Z", "2024-01-02T03:30:00Z", ("sleep", "2024-01-01T22:30:00Z", "2024-01-02T03:30:00Z")
    )
    sessions = {"2024-01-01T17_30_00-05_00_SLEEP.json": night, "2024-01-01T17_30_00.000-05_00_SLEEP.json": night}
    frame = read_google_fit(write_person(tmp_path / "p", sessions=sessions)).frame
    assert frame["date"].tolist() == [pd.Timestamp("2024-01-01")]
    assert frame["sleep_minutes"].tolist() == [300]  # 5 h once, not 600


def test_segments_of_a_session_that_cross_count_their_union(tmp_path):
    night = session(
        "2024-01-01T23:00:00Z",
        "2024-01-02T07:00:00Z",
        ("sleep.light", "2024-01-01T23:00:00Z", "2024-01-02T05:00:00Z"),
        ("sleep.deep", "2024-01-02T01:00:00Z", "2024-01-02T07:00:00Z"),  # crosses the first by 4 h
        ("sleep.rem", "2024-01-02T02:00:00Z", "2024-01-02T03:00:00Z"),  # inside both
    )
    result = read_google_fit(write_person(tmp_path / "p", sessions={"2024-01-01T23_00_00+00_00_SLEEP.json": night}))
    assert result.frame["sleep_minutes"].tolist() == [480]  # 8 h once, not 13 h
    assert any("overlapping minutes counted once: 300" in note for note in result.notes)


def test_fit_marks_no_naps_so_a_nap_counts_toward_its_day(tmp_path):
    sessions = {
        "2024-01-01T23_00_00+00_00_SLEEP.json": session("2024-01-01T23:00:00Z", "2024-01-02T07:00:00Z"),
        "2024-01-02T14_00_00+00_00_SLEEP.json": session("2024-01-02T14:00:00Z", "2024-01-02T14:30:00Z"),
    }
    frame = read_google_fit(write_person(tmp_path / "p", sessions=sessions)).frame
    assert frame["sleep_minutes"].tolist() == [510]  # 480 + 30, documented: Fit has no nap flag


def test_empty_cells_are_missing_and_zero_heart_rate_is_no_reading(tmp_path):
    summary = f"{HEADER}\n2024-01-01,2000,0,0,0,0\n2024-01-02,1900,,,,\n2024-01-03,2100,70.5,130,51,4000\n"
    frame = read_google_fit(write_person(tmp_path / "p", summary)).frame
    assert frame["date"].tolist() == list(pd.to_datetime(["2024-01-01", "2024-01-03"]))  # 01-02: nothing
    assert frame["steps"].tolist() == [0, 4000]  # a written 0 steps stays 0
    assert np.isnan(frame["heart_rate_mean"].iloc[0]) and np.isnan(frame["heart_rate_min"].iloc[0])
    assert frame["heart_rate_min"].iloc[1] == 51 and frame["resting_hr"].isna().all()


def test_per_day_file_without_step_counts_is_missing_not_zero(tmp_path):
    per_day = {
        "2024-01-05": "Start time,End time,Calories (kcal),Step count\n00:00:00.000+01:00,00:15:00.000+01:00,18.2,\n"
    }
    result = read_google_fit(write_person(tmp_path / "p", per_day=per_day))
    assert result.frame.empty
    assert "person-1: sleep_minutes: no All Sessions/*_SLEEP.json, left empty" in result.notes


def test_several_persons(tmp_path):
    write_person(tmp_path / "b", f"{HEADER}\n2024-01-01,1,,,,20\n")
    write_person(tmp_path / "a", f"{HEADER}\n2024-01-01,1,,,,10\n")
    frame = read_google_fit(tmp_path).frame
    assert frame[["person_id", "steps"]].values.tolist() == [["person-1", 10], ["person-2", 20]]


@pytest.mark.parametrize(
    ("summary", "expected"),
    [
        (f"{HEADER}\n2024-01-01,1,,,,-3\n", "line 2: 'Step count' is negative ('-3')"),
        (
            f"{HEADER}\n2024-01-01,1,7000,,,3\n",
            "line 2: 'Average heart rate (bpm)' is more than 300, which no body does ('7000')",
        ),
        (
            f"{HEADER}\n2024-01-01,1,,,,5\n2024-01-02,1,fast,,,5\n",
            "line 3: 'Average heart rate (bpm)' is not a number ('fast')",
        ),
        (f"{HEADER}\n01/02/2024,1,,,,5\n", "line 2: 'Date' is not a day like 2024-03-02 ('01/02/2024')"),
        ("Step count\n5\n", "no 'Date' column"),
    ],
)
def test_bad_daily_file_is_one_line_naming_file_and_line(tmp_path, summary, expected):
    write_person(tmp_path / "p", summary)
    with pytest.raises(SynthwearError) as raised:
        read_google_fit(tmp_path / "p")
    file = tmp_path / "p" / "Takeout" / "Fit" / "Daily activity metrics" / "Daily activity metrics.csv"
    assert str(raised.value) == f"{file}: {expected}"


def test_a_repeated_column_is_a_one_line_error(tmp_path):
    write_person(tmp_path / "p", f"{HEADER},Step count\n2024-01-01,1,,,,5,6\n")
    file = tmp_path / "p" / "Takeout" / "Fit" / "Daily activity metrics" / "Daily activity metrics.csv"
    with pytest.raises(SynthwearError) as raised:
        read_google_fit(tmp_path / "p")
    assert str(raised.value) == f"{file}: the header names the column 'Step count' more than once"


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        ("2024-02-30", "{file}: the file name is not a date written YYYY-MM-DD"),
        ("1600-01-01", "person-1: the day 1600-01-01 is outside 1677-09-22..2262-04-11, the dates a table can hold"),
    ],
)
def test_a_per_day_file_named_for_no_usable_day_is_a_one_line_error(tmp_path, day, expected):
    text = "Start time,End time,Calories (kcal),Step count\n00:00:00.000+01:00,00:15:00.000+01:00,18.2,40\n"
    write_person(tmp_path / "p", per_day={day: text})
    file = tmp_path / "p" / "Takeout" / "Fit" / "Daily activity metrics" / f"{day}.csv"
    with pytest.raises(SynthwearError) as raised:
        read_google_fit(tmp_path / "p")
    assert str(raised.value) == expected.format(file=file)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        (
            "2024-01-01T23_00_00+00_00_SLEEP.json",
            session("2024-01-01T23:00:00Z", "2024-01-02T07:00:00Z", ("sleep", "2024-01-01T23:00:00Z", "tomorrow")),
            "segment 0: 'endTime' is not a time like 2019-06-10T20:06:00Z ('tomorrow')",
        ),
        (
            "2024-01-01T23_00_00+00_00_SLEEP.json",
            session(
                "2024-01-01T23:00:00Z",
                "2024-01-02T07:00:00Z",
                ("sleep", "2024-01-02T07:00:00Z", "2024-01-01T23:00:00Z"),
            ),
            "segment 0: 'endTime' is before its startTime ('2024-01-01T23:00:00Z')",
        ),
        (
            "2024-01-01T23_00_00+00_00_SLEEP.json",
            {"startTime": "2024-01-01T23:00:00Z"},
            "session 0: no 'endTime' field",
        ),
        ("night_SLEEP.json", session("2024-01-01T23:00:00Z", "2024-01-02T07:00:00Z"), "name is not <local start time"),
        (
            "2024-01-01T23_00_00+25_00_SLEEP.json",
            session("2024-01-01T23:00:00Z", "2024-01-02T07:00:00Z"),
            "the UTC offset +25_00 in the name is no clock's (at most 14_00)",
        ),
    ],
)
def test_bad_session_is_one_line_naming_file_and_segment(tmp_path, name, content, expected):
    write_person(tmp_path / "p", sessions={name: content})
    with pytest.raises(SynthwearError) as raised:
        read_google_fit(tmp_path / "p")
    file = tmp_path / "p" / "Takeout" / "Fit" / "All Sessions" / name
    assert str(raised.value).startswith(f"{file}: {expected}") and "\n" not in str(raised.value)


def test_hook_registers_the_google_fit_importer():
    pm = pluggy.PluginManager("synthwear")
    pm.add_hookspecs(hookspecs)
    pm.register(google_fit)
    registered = {}
    pm.hook.register_importers(register=lambda name, importer: registered.setdefault(name, importer))
    assert list(registered) == ["google_fit"]
    importer = registered["google_fit"]
    assert isinstance(importer, GoogleFitImporter) and isinstance(importer, Importer) and importer.description
    assert importer(SAMPLE / "Takeout").frame["steps"].sum() == 21170  # 8123 + 10456 + 2591
