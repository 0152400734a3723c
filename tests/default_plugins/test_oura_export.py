"""The Oura importer: the hand-checked sample (API documents for one person, a trends CSV for
another), and small written exports for each rule (main sleep only, lowest heart rate, documents
counted once, API before CSV, one-line errors)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pluggy
import pytest

from synthwear import hookspecs
from synthwear.default_plugins import oura_export
from synthwear.default_plugins.oura_export import OuraExportImporter, read_oura_export
from synthwear.errors import SynthwearError
from synthwear.interfaces import Importer

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "oura_export_sample"
COLUMNS = ["person_id", "date", "resting_hr", "sleep_minutes", "steps", "readiness", "temperature_deviation"]
HEADER = "date,Total Sleep Duration,Lowest Resting Heart Rate,Average Resting Heart Rate,Steps,Readiness Score,Temperature Deviation (°C)"


def write(folder: Path, name: str, data: list, next_token=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps({"data": data, "next_token": next_token}))
    return folder


def period(id_: str, day: str, kind: str, seconds, lowest, average=70.0) -> dict:
    return {
        "id": id_,
        "day": day,
        "type": kind,
        "total_sleep_duration": seconds,
        "lowest_heart_rate": lowest,
        "average_heart_rate": average,
    }


def row(frame: pd.DataFrame, date: str, person_id: str = "person-1") -> pd.Series:
    rows = frame[(frame["date"] == pd.Timestamp(date)) & (frame["person_id"] == person_id)]
    assert len(rows) == 1, f"expected one row for {date}, found {len(rows)}"
    return rows.iloc[0]


# --- the sample (synthetic values in Oura's formats, see its README) -------------------------


@pytest.fixture(scope="module")
def sample():
    return read_oura_export(SAMPLE)


def test_sample_api_person(sample):
    frame = sample.frame[sample.frame["person_id"] == "person-1"]  # folder "api" sorts before "trends_csv"
    assert list(frame.columns) == COLUMNS
    assert frame["date"].tolist() == list(pd.date_range("2024-03-01", "2024-03-05"))
    # sleep: long_sleep total_sleep_duration / 60:
    #   03-01 25560 / 60 = 426 (the late_nap of 1980 s that day is left out)
    #   03-02 two long sleeps, (13800 + 11100) / 60 = 230 + 185 = 415
    #   03-03 only a short "sleep" period -> missing
    #   03-04 24600 / 60 = 410 (repeated on page 2 with the same id, counted once)
    #   03-05 26100 / 60 = 435 (page 2)
    assert frame["sleep_minutes"].fillna(-1).tolist() == [426, 415, -1, 410, 435]
    # resting HR: lowest_heart_rate of the long sleeps (03-02: min(55, 53) = 53); never the average
    assert frame["resting_hr"].fillna(-1).tolist() == [52, 53, -1, 51, 50]
    assert frame["steps"].fillna(-1).tolist() == [9120, 4310, 12050, 6875, -1]
    assert frame["readiness"].fillna(-1).tolist() == [82, 74, -1, 79, 85]
    assert frame["temperature_deviation"].fillna(-9).tolist() == [-0.12, 0.31, -9, -0.05, 0.08]


def test_sample_trends_csv_person(sample):
    frame = sample.frame[sample.frame["person_id"] == "person-2"]
    # Total Sleep Duration is seconds: 27000 / 60 = 450, 25380 / 60 = 423, 26100 / 60 = 435
    assert frame["sleep_minutes"].fillna(-1).tolist() == [450, 423, -1, 435]
    assert frame["resting_hr"].fillna(-1).tolist() == [49, 50, -1, 48]  # Lowest, not Average (54.1, ...)
    assert frame["steps"].fillna(-1).tolist() == [10432, 8421, 5123, -1]
    assert frame["readiness"].fillna(-1).tolist() == [81, 77, -1, 84]
    assert frame["temperature_deviation"].fillna(-9).tolist() == [-0.2, 0.1, -9, -0.3]


def test_sample_notes(sample):
    sleep = "from 8 records in 2 sleep*.json files (repeated documents counted once: 1; naps, short sleeps and rests excluded: 2; days with several long sleeps: 1)"
    assert sample.notes[:3] == [
        f"person-1: resting_hr: 4 days with a value, {sleep}",
        f"person-1: sleep_minutes: 4 days with a value, {sleep}",
        "person-1: steps: 4 days with a value, from 4 records in 1 daily_activity*.json file",
    ]
    assert "person-2: sleep_minutes: 3 days with a value, from 4 records in 1 oura_*_trends.csv file" in sample.notes


# --- written exports, one rule each ----------------------------------------------------------


def test_sleep_crossing_midnight_counts_on_oura_day_and_naps_are_excluded(tmp_path):
    night = {
        **period("a", "2024-01-02", "long_sleep", 27000, 50),
        "bedtime_start": "2024-01-01T23:00:00+00:00",
        "bedtime_end": "2024-01-02T07:00:00+00:00",
    }
    nap = period("b", "2024-01-02", "late_nap", 3600, 58)
    rest = period("c", "2024-01-03", "rest", 1800, 60)
    frame = read_oura_export(write(tmp_path / "p", "sleep.json", [night, nap, rest])).frame
    assert frame["date"].tolist() == [pd.Timestamp("2024-01-02")]  # the rest alone gives no day
    assert frame["sleep_minutes"].tolist() == [450]  # 27000 / 60; the nap's 60 min not added
    assert frame["resting_hr"].tolist() == [50]  # the nap's 58 bpm and the average 70 not used


def test_same_document_in_two_pages_counts_once(tmp_path):
    folder = write(
        tmp_path / "p", "daily_activity.json", [{"id": "x", "day": "2024-01-01", "steps": 100}], next_token="t"
    )
    write(
        folder,
        "daily_activity_2.json",
        [{"id": "x", "day": "2024-01-01", "steps": 100}, {"id": "y", "day": "2024-01-02", "steps": 50}],
    )
    result = read_oura_export(folder)
    assert result.frame["steps"].tolist() == [100, 50]
    assert (
        "person-1: steps: 2 days with a value, from 3 records in 2 daily_activity*.json files (repeated documents counted once: 1)"
        in result.notes
    )


def test_null_values_are_missing_and_partial_days_stay(tmp_path):
    folder = write(
        tmp_path / "p",
        "daily_readiness.json",
        [{"id": "r", "day": "2024-01-01", "score": None, "temperature_deviation": -0.4}],
    )
    row_ = row(read_oura_export(folder).frame, "2024-01-01")
    assert np.isnan(row_["readiness"]) and row_["temperature_deviation"] == -0.4
    assert row_[["resting_hr", "sleep_minutes", "steps"]].isna().all()


def test_api_documents_win_over_the_csv_and_the_csv_fills_other_days(tmp_path):
    folder = write(tmp_path / "p", "daily_activity.json", [{"id": "a", "day": "2024-01-01", "steps": 100}])
    (folder / "oura_2024-01-01_2024-01-02_trends.csv").write_text(
        f"{HEADER}\n2024-01-01,,,,999,,\n2024-01-02,,,,200,,\n"
    )
    assert read_oura_export(folder).frame["steps"].tolist() == [100, 200]


def test_old_csv_without_the_columns_leaves_channels_empty_with_a_note(tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "oura_2020-01-01_2020-01-02_trends.csv").write_text(
        "date,Total Sleep Time,Steps\n2020-01-01,27000,5000\n"
    )
    result = read_oura_export(folder)
    assert result.frame["steps"].tolist() == [5000] and result.frame["sleep_minutes"].isna().all()
    assert (
        "person-1: sleep_minutes: no 'Total Sleep Duration' column in oura_*_trends.csv, not read from it"
        in result.notes
    )


def test_several_persons(tmp_path):
    write(tmp_path / "b", "daily_activity.json", [{"id": "1", "day": "2024-01-01", "steps": 2}])
    write(tmp_path / "a", "daily_activity.json", [{"id": "1", "day": "2024-01-01", "steps": 1}])
    frame = read_oura_export(tmp_path).frame
    assert frame[["person_id", "steps"]].values.tolist() == [["person-1", 1], ["person-2", 2]]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        (
            "sleep.json",
            {"data": [period("a", "2024-01-01", "long_sleep", "long", 50)]},
            "record 0: 'total_sleep_duration' is not a number ('long')",
        ),
        (
            "sleep.json",
            {"data": [period("a", "2024-01-01", "long_sleep", 60, 50), {"id": "b", "type": "long_sleep"}]},
            "record 1: no 'day' field",
        ),
        (
            "daily_activity.json",
            {"data": [{"id": "a", "day": "2024-01-01", "steps": -5}]},
            "record 0: 'steps' is negative (-5)",
        ),
        (
            "daily_activity.json",
            {"data": [{"id": "a", "day": "2024-01-01", "steps": 5}, {"id": {"x": 1}, "day": "2024-01-02", "steps": 6}]},
            "record 1: 'id' is not text ({'x': 1})",
        ),
        ("daily_activity.json", [{"id": "a"}], 'expected an Oura API response {"data": [...]}, found a JSON list'),
        (
            "daily_activity.json",
            {"detail": "Unauthorized"},
            "expected an Oura API response {\"data\": [...]}, found a JSON dict without a 'data' list",
        ),
    ],
)
def test_bad_input_is_one_line_naming_file_and_record(tmp_path, name, content, expected):
    (tmp_path / name).write_text(json.dumps(content))
    with pytest.raises(SynthwearError) as raised:
        read_oura_export(tmp_path)
    assert str(raised.value) == f"{tmp_path / name}: {expected}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"{HEADER}\n2024-01-01,27000,50,55,abc,80,0.1\n", "line 2: 'Steps' is not a number ('abc')"),
        (
            f"{HEADER}\n2024-01-01,27000,50,55,100,80,0.1\n2024/01/02,,,,,,\n",
            "line 3: 'date' is not a day like 2024-03-02 ('2024/01/02')",
        ),
        ("Steps\n100\n", "no 'date' column"),
        (f"{HEADER}\n2024-01-01,1,2,3,4,5,6,7,8\n", "not valid CSV (Error tokenizing data."),
        (f"{HEADER}\n2024-01-01,27000,50,55,100,999,0.1\n", "line 2: 'Readiness Score' is more than 100"),
        (f"{HEADER}\n2024-01-01,27000,50,55,100,80,1e300\n", "line 2: 'Temperature Deviation (°C)' is more than 10"),
        (f"{HEADER}\n2024-01-01,27000,50,55,100,80,-50\n", "line 2: 'Temperature Deviation (°C)' is less than -10"),
        (f"{HEADER}\n2024-01-01,27000,500,55,100,80,0.1\n", "line 2: 'Lowest Resting Heart Rate' is more than 300"),
        (f"{HEADER}\n2024-01-01,27000,50,55,100.5,80,0.1\n", "line 2: 'Steps' is not a whole number"),
    ],
)
def test_bad_csv_is_one_line_naming_file_and_line(tmp_path, text, expected):
    file = tmp_path / "oura_2024-01-01_2024-01-02_trends.csv"
    file.write_text(text, encoding="utf-8")
    with pytest.raises(SynthwearError) as raised:
        read_oura_export(tmp_path)
    assert str(raised.value).startswith(f"{file}: {expected}") and "\n" not in str(raised.value)


def test_hook_registers_the_oura_importer():
    pm = pluggy.PluginManager("synthwear")
    pm.add_hookspecs(hookspecs)
    pm.register(oura_export)
    registered = {}
    pm.hook.register_importers(register=lambda name, importer: registered.setdefault(name, importer))
    assert list(registered) == ["oura"]
    importer = registered["oura"]
    assert isinstance(importer, OuraExportImporter) and isinstance(importer, Importer) and importer.description
    assert importer(SAMPLE / "api").frame["sleep_minutes"].sum() == 1686  # 426 + 415 + 410 + 435
