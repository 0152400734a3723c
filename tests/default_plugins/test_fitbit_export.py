"""The Fitbit importer: hand-checked days of the real PMData sample, and small written exports
for each rule (repeats counted once, naps excluded, missing days stay NaN, one-line errors)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pluggy
import pytest

from synthwear import hookspecs
from synthwear.default_plugins import fitbit_export
from synthwear.default_plugins.fitbit_export import FitbitExportImporter, read_fitbit_export
from synthwear.errors import SynthwearError
from synthwear.interfaces import Importer

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "fitbit_export_sample" / "p03"
COLUMNS = ["person_id", "date", "resting_hr", "sleep_minutes", "steps"]


def write_person(folder: Path, *, rhr=None, sleep=None, steps=None) -> Path:
    """Write one person's export; a channel left as None has no file at all."""
    folder.mkdir(parents=True)
    for name, records in [("resting_heart_rate.json", rhr), ("sleep.json", sleep), ("steps.json", steps)]:
        if records is not None:
            (folder / name).write_text(json.dumps(records))
    return folder


def rhr(day: str, bpm: float) -> dict:
    return {"dateTime": f"{day} 00:00:00", "value": {"date": None, "value": bpm, "error": 0.0}}


def sleep_log(log_id: int, day: str, minutes: int, main: bool = True) -> dict:
    return {"logId": log_id, "dateOfSleep": day, "minutesAsleep": minutes, "mainSleep": main}


def step(minute: str, count: str) -> dict:
    return {"dateTime": minute, "value": count}


def day(frame: pd.DataFrame, date: str, person_id: str | None = None) -> pd.Series:
    rows = frame[frame["date"] == pd.Timestamp(date)]
    if person_id is not None:
        rows = rows[rows["person_id"] == person_id]
    assert len(rows) == 1, f"expected one row for {date}, found {len(rows)}"
    return rows.iloc[0]


# --- the real sample (PMData p03, CC BY 4.0; Thambawita et al., MMSys 2020) -------------------
# Expected numbers were worked out with jq on the raw files, independently of the importer, e.g.
#   jq -c '.[] | select(.dateOfSleep == "2019-11-14") | [.logId, .minutesAsleep, .mainSleep]' sleep.json
#   jq '[.[] | select(.dateTime | startswith("2019-11-14")) | .value | tonumber] | add' steps.json


@pytest.fixture(scope="module")
def p03() -> pd.DataFrame:
    result = read_fitbit_export(SAMPLE)
    assert result.notes == []  # all three files are there and each has values
    return result.frame


def test_sample_table_shape(p03):
    # 101 days with a resting HR estimate, 78 nights with a main sleep, 122 days with step
    # records: their union is 122 days (2019-11-01 .. 2020-03-31 has 152; the other 30 have
    # resting HR 0, no main sleep and no steps, so they are dropped).
    assert list(p03.columns) == COLUMNS
    assert len(p03) == 122
    assert (p03["person_id"] == "person-1").all()  # never the folder's name
    assert p03["date"].dtype == "datetime64[ns]"
    assert (p03["date"] == p03["date"].dt.normalize()).all()
    assert p03["date"].is_monotonic_increasing and p03["date"].is_unique
    assert all(p03[c].dtype == "float64" for c in COLUMNS[2:])
    assert p03["resting_hr"].notna().sum() == 101
    assert p03["sleep_minutes"].notna().sum() == 78
    assert p03["steps"].notna().sum() == 122


def test_sample_sleep_logs_repeated_at_chunk_borders_count_once(p03):
    # logIds 24630940989 (2019-11-14, 432 min), 25412819392 (2020-01-13, 388 min) and
    # 25901485616 (2020-02-12, 335 min) each appear twice in sleep.json, the night's only main
    # sleep: counted twice they would read 864, 776 and 670.
    assert day(p03, "2019-11-14")["sleep_minutes"] == 432
    assert day(p03, "2020-01-13")["sleep_minutes"] == 388
    assert day(p03, "2020-02-12")["sleep_minutes"] == 335
    # all main-sleep minutes: 29590 summed over records, 28435 with each logId once
    assert p03["sleep_minutes"].sum() == 28435


def test_sample_naps_are_not_the_nights_sleep(p03):
    # main sleep + nap (mainSleep false) on: 2019-12-21 263 + 174, 2020-01-08 352 + 73,
    # 2020-03-27 160 + 126
    assert day(p03, "2019-12-21")["sleep_minutes"] == 263
    assert day(p03, "2020-01-08")["sleep_minutes"] == 352
    assert day(p03, "2020-03-27")["sleep_minutes"] == 160


def test_sample_steps_sum_the_days_minutes(p03):
    # jq sums of the per-minute strings: 2019-11-14 has 454 minute records summing to 7284,
    # 2020-01-13 has 626 summing to 9216, 2019-11-13 has 34 summing to 13; the whole file
    # sums to 653734. (This sample repeats no step minute: each of its 53042 dateTimes is
    # unique, so the repeated-minute rule is tested on a written export below.)
    assert day(p03, "2019-11-14")["steps"] == 7284
    assert day(p03, "2020-01-13")["steps"] == 9216
    assert day(p03, "2019-11-13")["steps"] == 13
    assert p03["steps"].sum() == 653734


def test_sample_resting_hr_zero_is_missing_and_absent_days_are_not_zero(p03):
    assert day(p03, "2019-11-01")["resting_hr"] == pytest.approx(60.7101993560791)
    assert day(p03, "2019-11-14")["resting_hr"] == pytest.approx(56.34145450592041)
    # 2019-11-03: resting HR 0 in the file (no estimate), no sleep, one step record
    # {"dateTime": "2019-11-03 14:04:00", "value": "0"}: the day stays, resting HR missing,
    # steps a real 0.
    nov3 = day(p03, "2019-11-03")
    assert np.isnan(nov3["resting_hr"]) and np.isnan(nov3["sleep_minutes"])
    assert nov3["steps"] == 0
    # 2019-11-04: resting HR 0, no sleep log and no step record at all: nothing known, no row
    # (and certainly no steps 0).
    assert not (p03["date"] == pd.Timestamp("2019-11-04")).any()


# --- written exports, one rule each ----------------------------------------------------------


def test_repeated_sleep_log_counts_once(tmp_path):
    log = sleep_log(11, "2020-01-01", 400)
    write_person(tmp_path / "p01", sleep=[log, sleep_log(12, "2020-01-02", 300), log])
    frame = read_fitbit_export(tmp_path / "p01").frame
    assert frame["sleep_minutes"].tolist() == [400, 300]


def test_a_stray_export_file_atop_a_cohort_folder_says_which_persons_were_not_read(tmp_path):
    """The folder holds a person's file, so it is read as that one person; the persons in its
    sub-folders are not read, and the notes say so (a folder holding only persons gives no such note)."""
    cohort = tmp_path / "cohort"
    write_person(cohort / "anna", sleep=[sleep_log(1, "2020-01-01", 400)])
    write_person(cohort / "ben", sleep=[sleep_log(2, "2020-01-01", 300)])
    assert not any("not read" in note for note in read_fitbit_export(cohort).notes)
    (cohort / "sleep.json").write_text(json.dumps([sleep_log(3, "2020-01-01", 200)]))
    result = read_fitbit_export(cohort)
    assert result.frame["sleep_minutes"].tolist() == [200]
    unread = [note for note in result.notes if "holds an export too and was not read" in note]
    assert [note.split("its ")[1].split(" holds")[0] for note in unread] == ["'anna'", "'ben'"]


def test_non_main_sleep_is_excluded(tmp_path):
    logs = [
        sleep_log(1, "2020-01-01", 420),
        sleep_log(2, "2020-01-01", 45, main=False),
        sleep_log(3, "2020-01-02", 30, main=False),
    ]
    write_person(tmp_path / "p01", sleep=logs, steps=[step("2020-01-02 12:00:00", "7")])
    frame = read_fitbit_export(tmp_path / "p01").frame
    assert day(frame, "2020-01-01")["sleep_minutes"] == 420
    assert np.isnan(day(frame, "2020-01-02")["sleep_minutes"])  # a nap alone is no night's sleep


def test_repeated_step_minute_counts_once(tmp_path):
    minutes = [
        step("2020-01-01 08:00:00", "100"),
        step("2020-01-01 08:01:00", "5"),
        step("2020-01-01 08:00:00", "100"),
        step("2020-01-02 23:59:00", "12"),
    ]
    write_person(tmp_path / "p01", steps=minutes)
    frame = read_fitbit_export(tmp_path / "p01").frame
    assert frame["steps"].tolist() == [105, 12]


def test_day_without_step_records_is_nan_not_zero(tmp_path):
    write_person(
        tmp_path / "p01",
        rhr=[rhr("2020-01-01", 60.5), rhr("2020-01-02", 61.0), rhr("2020-01-03", 0.0)],
        steps=[step("2020-01-01 10:00:00", "0"), step("2020-01-03 10:00:00", "40")],
    )
    frame = read_fitbit_export(tmp_path / "p01").frame
    assert frame["date"].tolist() == list(pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03"]))
    assert frame["steps"].iloc[0] == 0  # records that sum to 0 are a real 0
    assert np.isnan(frame["steps"].iloc[1])  # no records at all
    assert np.isnan(frame["resting_hr"].iloc[2])  # 0 = no estimate


def test_day_with_every_channel_missing_is_dropped(tmp_path):
    write_person(tmp_path / "p01", rhr=[rhr("2020-01-01", 0.0), rhr("2020-01-02", 58.0)], steps=[])
    result = read_fitbit_export(tmp_path / "p01")
    assert result.frame["date"].tolist() == [pd.Timestamp("2020-01-02")]
    assert result.notes == [
        "person-1: no sleep.json, sleep_minutes left empty",
        "person-1: steps.json has no values, steps left empty",
    ]


def test_folder_of_persons_gets_pseudonyms_in_folder_order(tmp_path):
    write_person(tmp_path / "jane.doe@example.com", rhr=[rhr("2020-01-01", 55.0)])
    write_person(tmp_path / "Bob Smith", steps=[step("2020-01-01 09:00:00", "9"), step("2020-01-02 09:00:00", "3")])
    (tmp_path / "readme_assets").mkdir()
    result = read_fitbit_export(tmp_path)
    frame = result.frame
    assert list(frame.columns) == COLUMNS
    assert frame["person_id"].tolist() == ["person-1", "person-1", "person-2"]  # "Bob Smith" sorts first
    assert day(frame, "2020-01-01", "person-2")["resting_hr"] == 55
    assert day(frame, "2020-01-01", "person-1")["steps"] == 9
    assert f"sub-folder 3 of {tmp_path}: no resting_heart_rate.json, sleep.json, steps.json, skipped" in result.notes
    assert not any(name in " ".join(result.notes) for name in ("jane", "Bob", "readme"))


def test_missing_sleep_json_is_a_note_and_an_empty_column(tmp_path):
    write_person(tmp_path / "p03", rhr=[rhr("2020-01-01", 60.0)], steps=[step("2020-01-01 09:00:00", "9")])
    result = read_fitbit_export(tmp_path / "p03")
    assert result.notes == ["person-1: no sleep.json, sleep_minutes left empty"]
    assert list(result.frame.columns) == COLUMNS
    assert result.frame["sleep_minutes"].dtype == "float64"
    assert result.frame["sleep_minutes"].isna().all()


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        (
            "steps.json",
            [step("2020-01-01 08:00:00", "1"), step("2020-01-01 08:01:00", "abc")],
            "record 1: 'value' is not a number ('abc')",
        ),
        ("steps.json", [step("2020-01-01 08:00:00", "1"), {"value": "2"}], "record 1: no 'dateTime' field"),
        (
            "steps.json",
            [step("2020-01-01 08:00:00", "1"), step("01/01/20 08:01:00", "2")],
            "record 1: 'dateTime' is not a time like 2024-03-02 00:00:00 ('01/01/20 08:01:00')",
        ),
        ("steps.json", [step("2020-01-01 08:00:00", "1"), 5], "record 1: expected a JSON object, found 5"),
        (
            "sleep.json",
            [sleep_log(1, "2020-01-01", 400), {"logId": 2, "dateOfSleep": "2020-01-02"}],
            "record 1: no 'minutesAsleep' field",
        ),
        (
            "sleep.json",
            [{**sleep_log(1, "2020-01-01", 400), "mainSleep": "yes"}],
            "record 0: 'mainSleep' is not true or false ('yes')",
        ),
        (
            "resting_heart_rate.json",
            [rhr("2020-01-01", 60.0), {"dateTime": "2020-01-02 00:00:00", "value": {}}],
            "record 1: no 'value.value' field",
        ),
        ("resting_heart_rate.json", [rhr("2020-01-01", None)], "record 0: 'value.value' is null"),
        ("resting_heart_rate.json", [rhr("2020-01-01", -60.0)], "record 0: 'value.value' is negative (-60.0)"),
        (
            "resting_heart_rate.json",
            [rhr("2020-01-01", 60.0), rhr("2020-01-02", 0), rhr("2020-01-01", 0), rhr("2020-01-01", 64.0)],
            "record 3: 'value.value' is 64 for a day an earlier record gives as 60; repeated records must agree",
        ),
        (
            "steps.json",
            [step("2020-01-01 08:00:00", "1"), step("2020-01-01 08:01:00", "2.5")],
            "record 1: 'value' is not a whole number ('2.5')",
        ),
        (
            "steps.json",
            [step("2020-01-01 08:00:00", "1e308"), step("2020-01-01 08:01:00", "1e308")],
            "record 0: 'value' is more than 1000, which no body does ('1e308')",
        ),
        (
            "resting_heart_rate.json",
            [rhr("2020-01-01", 3000.0)],
            "record 0: 'value.value' is more than 300, which no body does (3000.0)",
        ),
        (
            "steps.json",
            [step("2020-01-01 08:00:00", "3"), step("2020-01-01 08:01:00", "2"), step("2020-01-01 08:00:00", "7")],
            "record 2: 'value' is 7 for a minute an earlier record gives as 3; repeated records must agree",
        ),
        (
            "sleep.json",
            [sleep_log(1, "2020-01-01", 400), sleep_log(2, "2020-01-02", 380), sleep_log(1, "2020-01-01", 410)],
            "record 2: 'minutesAsleep' is 410 for a sleep log an earlier record gives as 400; repeated records must agree",
        ),
        (
            "sleep.json",
            [sleep_log(1, "2020-01-01", 400), sleep_log(2, "2020-01-02", 380), sleep_log(1, "2020-01-05", 400)],
            "record 2: 'dateOfSleep' is 2020-01-05 for a sleep log an earlier record dates 2020-01-01; "
            "repeated records must agree",
        ),
    ],
)
def test_malformed_record_names_file_and_record_in_one_line(tmp_path, name, content, expected):
    folder = tmp_path / "p01"
    folder.mkdir()
    (folder / name).write_text(json.dumps(content))
    with pytest.raises(SynthwearError) as raised:
        read_fitbit_export(folder)
    message = str(raised.value)
    assert message == f"{folder / name}: {expected}"
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[{"dateTime": "2020-01-01 08:00:00", "value": "1"},', "not valid JSON (Expecting value: line 1"),
        ('{"dateTime": "2020-01-01 08:00:00"}', "expected a list of records, found a JSON dict"),
    ],
)
def test_unparsable_file_names_the_file_in_one_line(tmp_path, text, expected):
    (tmp_path / "steps.json").write_text(text)
    with pytest.raises(SynthwearError) as raised:
        read_fitbit_export(tmp_path)
    message = str(raised.value)
    assert message.startswith(f"{tmp_path / 'steps.json'}: {expected}")
    assert "\n" not in message


def test_folder_without_an_export_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SynthwearError, match="no export found"):
        read_fitbit_export(tmp_path)
    with pytest.raises(SynthwearError, match="does not exist"):
        read_fitbit_export(tmp_path / "missing")


def test_hook_registers_the_fitbit_importer(tmp_path):
    pm = pluggy.PluginManager("synthwear")
    pm.add_hookspecs(hookspecs)
    pm.register(fitbit_export)
    registered = {}
    pm.hook.register_importers(register=lambda name, importer: registered.setdefault(name, importer))
    assert list(registered) == ["fitbit"]
    importer = registered["fitbit"]
    assert isinstance(importer, FitbitExportImporter) and isinstance(importer, Importer)
    assert importer.description
    write_person(tmp_path / "p01", steps=[step("2020-01-01 08:00:00", "3")])
    assert importer(tmp_path / "p01").frame["steps"].tolist() == [3]
