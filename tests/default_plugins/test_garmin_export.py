"""The Garmin importer: the hand-checked sample export, and small written exports for each rule
(repeated days counted once, awake time and naps not sleep, no-data codes missing, one-line errors)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pluggy
import pytest

from synthwear import hookspecs
from synthwear.default_plugins import garmin_export
from synthwear.default_plugins.garmin_export import GarminExportImporter, read_garmin_export
from synthwear.errors import SynthwearError
from synthwear.interfaces import Importer

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "garmin_export_sample"
COLUMNS = ["person_id", "date", "resting_hr", "sleep_minutes", "steps", "stress", "body_battery", "hrv"]


def write_person(folder: Path, *, daily=None, sleep=None, health=None) -> Path:
    """Write one person's DI_CONNECT folder; ``daily``/``sleep``/``health`` map file names to records."""
    for sub, files in [
        ("DI-Connect-Aggregator", daily),
        ("DI-Connect-Wellness", sleep),
        ("DI-Connect-Wellness", health),
    ]:
        (folder / "DI_CONNECT" / sub).mkdir(parents=True, exist_ok=True)
        for name, records in (files or {}).items():
            (folder / "DI_CONNECT" / sub / name).write_text(json.dumps(records))
    return folder


def uds(day: str, steps=None, rhr=None, stress=None, highest=None) -> dict:
    record = {"calendarDate": day, "totalSteps": steps, "restingHeartRate": rhr}
    if stress is not None:
        record["allDayStress"] = {
            "aggregatorList": [
                {"type": "AWAKE", "averageStressLevel": 99},
                {"type": "TOTAL", "averageStressLevel": stress},
            ]
        }
    if highest is not None:
        record["bodyBattery"] = {
            "bodyBatteryStatList": [
                {"bodyBatteryStatType": "LOWEST", "statsValue": 5},
                {"bodyBatteryStatType": "HIGHEST", "statsValue": highest},
            ]
        }
    return record


def night(day: str, deep, light, rem, awake=600, **more) -> dict:
    stages = {"deepSleepSeconds": deep, "lightSleepSeconds": light, "remSleepSeconds": rem, "awakeSleepSeconds": awake}
    return {"calendarDate": day, **{k: v for k, v in stages.items() if v is not None}, **more}


def day(frame: pd.DataFrame, date: str, person_id: str = "person-1") -> pd.Series:
    rows = frame[(frame["date"] == pd.Timestamp(date)) & (frame["person_id"] == person_id)]
    assert len(rows) == 1, f"expected one row for {date}, found {len(rows)}"
    return rows.iloc[0]


# --- the sample export (synthetic values in Garmin's file layout, see its README) ------------


@pytest.fixture(scope="module")
def sample():
    return read_garmin_export(SAMPLE)


def test_sample_table(sample):
    frame = sample.frame
    assert list(frame.columns) == COLUMNS
    assert frame["date"].tolist() == list(pd.date_range("2024-02-28", "2024-03-03"))
    assert (frame["person_id"] == "person-1").all()
    assert all(frame[c].dtype == "float64" for c in COLUMNS[2:])
    # steps: totalSteps per calendarDate; 2024-03-01 is in both UDSFiles and counts once
    assert frame["steps"].tolist() == [8412, 10233, 7640, 1520, 9005]
    # 2024-03-02: restingHeartRate null -> missing, not 0
    assert frame["resting_hr"].tolist()[:3] == [54, 52, 55] and np.isnan(frame["resting_hr"].iloc[3])
    # sleep: (deep + light + REM) / 60, awake not counted:
    #   02-28 (5400 + 15120 + 5040) / 60 = 426   (awake 1080 s left out)
    #   02-29 (4860 + 14580 + 5760) / 60 = 420
    #   03-01 OFF_WRIST window without stages -> missing
    #   03-02 (6000 + 13200 + 6300) / 60 = 425
    #   03-03 (3900 + 13500 + 4800) / 60 = 370
    assert frame["sleep_minutes"].fillna(-1).tolist() == [426, 420, -1, 425, 370]
    # stress: TOTAL averageStressLevel; 02-29 is -2 and 03-02 is -1 (no data) -> missing
    assert frame["stress"].fillna(-1).tolist() == [31, -1, 27, -1, 35]
    # body battery: HIGHEST statsValue; 03-02 has no bodyBattery
    assert frame["body_battery"].fillna(-1).tolist() == [88, 95, 70, -1, 81]
    assert frame["hrv"].fillna(-1).tolist() == [48, 51, -1, 45, 50]


def test_sample_sleep_crossing_midnight_is_on_the_wake_up_day(sample):
    # the 2024-03-02 night runs 2024-03-01T23:55 -> 2024-03-02T07:25 (GMT) and counts on 03-02 only
    assert day(sample.frame, "2024-03-02")["sleep_minutes"] == 425
    assert np.isnan(day(sample.frame, "2024-03-01")["sleep_minutes"])


def test_sample_notes(sample):
    assert sample.notes == [
        "person-1: resting_hr: 4 days with a value, from 6 records in 2 UDSFile_*.json files (repeated days counted once: 1)",
        "person-1: sleep_minutes: 4 days with a value, from 5 records in 1 *_sleepData.json file (records without sleep stages: 1)",
        "person-1: steps: 5 days with a value, from 6 records in 2 UDSFile_*.json files (repeated days counted once: 1)",
        "person-1: stress: 3 days with a value, from 6 records in 2 UDSFile_*.json files "
        "(repeated days counted once: 1; no-data codes -1/-2 left empty: 2)",
        "person-1: body_battery: 4 days with a value, from 6 records in 2 UDSFile_*.json files (repeated days counted once: 1)",
        "person-1: hrv: 4 days with a value, from 4 records in 1 *_healthStatusData.json file",
    ]


# --- written exports, one rule each ----------------------------------------------------------


def test_repeated_day_across_files_counts_once_and_keeps_the_first(tmp_path):
    write_person(
        tmp_path / "p",
        daily={
            "UDSFile_2024-01-01_2024-01-02.json": [uds("2024-01-01", 500), uds("2024-01-02", 600)],
            "UDSFile_2024-01-02_2024-01-03.json": [uds("2024-01-02", 999), uds("2024-01-03", 700)],
        },
    )
    assert read_garmin_export(tmp_path / "p").frame["steps"].tolist() == [500, 600, 700]


def test_awake_time_and_naps_are_not_sleep(tmp_path):
    # (3600 + 10800 + 5400) / 60 = 330; awakeSleepSeconds 3000 and napTimeSeconds 2400 not added
    record = night("2024-01-02", 3600, 10800, 5400, awake=3000, napTimeSeconds=2400, napList=[{}])
    write_person(tmp_path / "p", sleep={"x_sleepData.json": [record]})
    assert read_garmin_export(tmp_path / "p").frame["sleep_minutes"].tolist() == [330]


def test_absent_rem_stage_counts_as_zero_but_no_stage_at_all_is_missing(tmp_path):
    nights = [
        night("2024-01-01", 3600, 12000, None),
        night("2024-01-02", None, None, None, sleepWindowConfirmationType="OFF_WRIST"),
    ]
    write_person(tmp_path / "p", sleep={"x_sleepData.json": nights}, daily={"UDSFile_a.json": [uds("2024-01-02", 10)]})
    frame = read_garmin_export(tmp_path / "p").frame
    assert day(frame, "2024-01-01")["sleep_minutes"] == 260  # (3600 + 12000) / 60
    assert np.isnan(day(frame, "2024-01-02")["sleep_minutes"])


def test_no_data_codes_and_zero_resting_hr_are_missing_not_zero(tmp_path):
    records = [
        uds("2024-01-01", 0, rhr=0, stress=-1),
        uds("2024-01-02", 4000, rhr=58, stress=-2, highest=77),
        uds("2024-01-03", 3000, stress=0),
        uds("2024-01-04", None, rhr=60),  # no step count that day: missing, whole numbers or not
    ]
    write_person(tmp_path / "p", daily={"UDSFile_a.json": records})
    frame = read_garmin_export(tmp_path / "p").frame
    assert frame["steps"].tolist()[:3] == [0, 4000, 3000] and np.isnan(frame["steps"].iloc[3])  # a real 0 stays 0
    assert np.isnan(frame["resting_hr"].iloc[0]) and frame["resting_hr"].iloc[1] == 58
    assert np.isnan(frame["stress"].iloc[0]) and np.isnan(frame["stress"].iloc[1]) and frame["stress"].iloc[2] == 0
    assert frame["body_battery"].iloc[1] == 77  # HIGHEST, not the LOWEST listed first


def test_partial_day_keeps_what_it_has(tmp_path):
    write_person(tmp_path / "p", daily={"UDSFile_a.json": [{"calendarDate": "2024-01-05", "totalSteps": 1234}]})
    result = read_garmin_export(tmp_path / "p")
    row = day(result.frame, "2024-01-05")
    assert row["steps"] == 1234 and row[["resting_hr", "stress", "body_battery", "sleep_minutes", "hrv"]].isna().all()
    assert "person-1: sleep_minutes: no *_sleepData.json file, left empty" in result.notes
    assert "person-1: hrv: no *_healthStatusData.json file, left empty" in result.notes


def test_several_persons_get_pseudonyms_in_folder_order(tmp_path):
    write_person(tmp_path / "zoe@example.com", daily={"UDSFile_a.json": [uds("2024-01-01", 2)]})
    write_person(tmp_path / "adam", daily={"UDSFile_a.json": [uds("2024-01-01", 1)]})
    (tmp_path / "photos").mkdir()
    result = read_garmin_export(tmp_path)
    assert result.frame["person_id"].tolist() == ["person-1", "person-2"]
    assert result.frame["steps"].tolist() == [1, 2]  # adam sorts first
    assert "sub-folder 2 of" in result.notes[0] and "photos" not in result.notes[0]


def test_the_di_connect_folder_itself_is_accepted(tmp_path):
    write_person(tmp_path / "p", daily={"UDSFile_a.json": [uds("2024-01-01", 5)]})
    assert read_garmin_export(tmp_path / "p" / "DI_CONNECT").frame["steps"].tolist() == [5]


@pytest.mark.parametrize(
    ("kind", "records", "expected"),
    [
        ("daily", [uds("2024-01-01", 5), {"totalSteps": 3}], "record 1: no 'calendarDate' field"),
        ("daily", [uds("2024-01-01", "many")], "record 0: 'totalSteps' is not a number ('many')"),
        ("daily", [uds("2024-01-01", 5), uds("2024-01-02", -40)], "record 1: 'totalSteps' is negative (-40)"),
        ("daily", [uds("01/02/2024", 5)], "record 0: 'calendarDate' is not a day like 2024-03-02 ('01/02/2024')"),
        ("sleep", [night("2024-01-01", 60, "x", 60)], "record 0: 'lightSleepSeconds' is not a number ('x')"),
        ("daily", [uds("2024-01-01", 5), 7], "record 1: expected a JSON object, found 7"),
        ("daily", [uds("2024-01-01", 8000.5)], "record 0: 'totalSteps' is not a whole number (8000.5)"),
        (
            "daily",
            [uds("2024-01-01", 5), {**uds("2024-01-02", 5), "allDayStress": {"aggregatorList": {"type": "TOTAL"}}}],
            "record 1: 'allDayStress.aggregatorList' is not a list ({'type': 'TOTAL'})",
        ),
        (
            "daily",
            [uds("2024-01-01", 10**15)],
            "record 0: 'totalSteps' is more than 1.44e+06, which no body does (1000000000000000)",
        ),
        (
            "daily",
            [uds("2024-01-01", 5, rhr=5000)],
            "record 0: 'restingHeartRate' is more than 300, which no body does (5000)",
        ),
        (
            "daily",
            [uds("2024-01-01", 5, stress=-2), uds("2024-01-02", 5, stress=-50)],
            "record 1: 'allDayStress.aggregatorList[TOTAL].averageStressLevel' is negative and no no-data code (-1, -2) (-50)",
        ),
        (
            "daily",
            [uds("2024-01-01", 5, stress=500)],
            "record 0: 'allDayStress.aggregatorList[TOTAL].averageStressLevel' is more than 100, which no body does (500)",
        ),
        (
            "health",
            [{"calendarDate": "2024-01-01", "metrics": [{"type": "HRV", "value": 5000}]}],
            "record 0: 'metrics[HRV].value' is more than 1000, which no body does (5000)",
        ),
        (
            "daily",
            [uds("2024-01-01", 5, highest=180)],
            "record 0: 'bodyBattery.bodyBatteryStatList[HIGHEST].statsValue' is more than 100, which no body does (180)",
        ),
    ],
)
def test_bad_record_is_one_line_naming_file_and_record(tmp_path, kind, records, expected):
    name = {"daily": "UDSFile_a.json", "sleep": "a_sleepData.json", "health": "a_healthStatusData.json"}[kind]
    write_person(tmp_path / "p", **{kind: {name: records}})
    sub = "DI-Connect-Aggregator" if kind == "daily" else "DI-Connect-Wellness"
    with pytest.raises(SynthwearError) as raised:
        read_garmin_export(tmp_path / "p")
    assert str(raised.value) == f"{tmp_path / 'p' / 'DI_CONNECT' / sub / name}: {expected}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[{", "not valid JSON (Expecting"),
        ('{"calendarDate": "2024-01-01"}', "expected a list of records, found a JSON dict"),
    ],
)
def test_unparsable_file_is_one_line_naming_the_file(tmp_path, text, expected):
    write_person(tmp_path / "p")
    file = tmp_path / "p" / "DI_CONNECT" / "DI-Connect-Aggregator" / "UDSFile_a.json"
    file.write_text(text)
    with pytest.raises(SynthwearError) as raised:
        read_garmin_export(tmp_path / "p")
    assert str(raised.value).startswith(f"{file}: {expected}") and "\n" not in str(raised.value)


def test_folder_without_an_export_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SynthwearError, match="no export found"):
        read_garmin_export(tmp_path)


def test_hook_registers_the_garmin_importer(tmp_path):
    pm = pluggy.PluginManager("synthwear")
    pm.add_hookspecs(hookspecs)
    pm.register(garmin_export)
    registered = {}
    pm.hook.register_importers(register=lambda name, importer: registered.setdefault(name, importer))
    assert list(registered) == ["garmin"]
    importer = registered["garmin"]
    assert isinstance(importer, GarminExportImporter) and isinstance(importer, Importer) and importer.description
    assert importer(SAMPLE).frame["steps"].sum() == 36810  # 8412 + 10233 + 7640 + 1520 + 9005
