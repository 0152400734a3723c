"""The readers every device importer shares: their failures are one-line errors naming the file."""

import numpy as np
import pandas as pd
import pytest

from synthwear.default_plugins.export_records import (
    Source,
    days,
    read_csv,
    read_json,
    without_implausible_days,
    without_impossible_sleep,
)
from synthwear.errors import SynthwearError


def test_json_nested_deeper_than_the_parser_recurses_is_a_one_line_error(tmp_path):
    file = tmp_path / "steps.json"
    file.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(SynthwearError) as raised:
        read_json(file)
    assert str(raised.value) == f"{file}: not an export's JSON (nested too deeply to read)"


def test_csv_naming_a_column_twice_is_a_one_line_error(tmp_path):
    file = tmp_path / "trends.csv"
    file.write_text("date,Steps,Steps\n2024-01-01,5,6\n")
    with pytest.raises(SynthwearError) as raised:
        read_csv(file, ("date",))
    assert str(raised.value) == f"{file}: the header names the column 'Steps' more than once"
    file.write_text("date,Steps\n2024-01-01,5\n")
    assert read_csv(file, ("date",)).to_dict("records") == [{"date": "2024-01-01", "Steps": "5"}]


def test_csv_holding_a_nul_byte_is_a_one_line_error_naming_its_line(tmp_path):
    file = tmp_path / "trends.csv"
    file.write_bytes(b"date,Steps\n2024-01-01,5\n2024-01-02,1\x0000\n")  # pandas would read 1
    with pytest.raises(SynthwearError) as raised:
        read_csv(file, ("date",))
    assert str(raised.value) == f"{file}: line 3: holds a NUL byte (a damaged file?)"


def test_a_day_with_more_sleep_than_minutes_is_left_empty_with_a_note():
    frame = pd.DataFrame(
        {
            "person_id": ["person-1"] * 3 + ["person-2"],
            "date": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-01"]),
            "sleep_minutes": [1700.0, 1440.0, 2880.0, 420.0],
            "steps": [1.0, 2.0, np.nan, 4.0],
        }
    )
    notes = []
    kept = without_impossible_sleep(frame, notes)
    np.testing.assert_array_equal(kept["sleep_minutes"], [np.nan, 1440, 420])  # a whole day asleep is possible
    assert kept["steps"].tolist() == [1, 2, 4]  # 2024-01-03 had nothing else: no row
    assert notes == [
        "person-1: sleep_minutes: 2 day(s) with more than 1,440 minutes asleep (overlapping sleep records?) "
        "left empty, the first 2024-01-01 (1,700 minutes)"
    ]


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_json_constants_json_does_not_have_are_refused(tmp_path, token):
    """Python reads them; a NaN in a required field would pass as missing."""
    file = tmp_path / "resting_heart_rate.json"
    file.write_text(f'[{{"value": {{"value": {token}}}}}]')
    with pytest.raises(SynthwearError) as raised:
        read_json(file)
    assert str(raised.value) == f"{file}: not valid JSON ({token} is not JSON)"


@pytest.mark.parametrize(
    ("written", "problem"),
    [
        ("1600-01-01", "is outside 1677-09-22..2262-04-11, the dates a table can hold"),  # the layout is right
        ("01/02/2024", "is not a day like 2024-03-02"),
    ],
)
def test_a_day_says_whether_its_layout_or_its_year_is_wrong(tmp_path, written, problem):
    values = pd.Series(["2024-01-01", written], name="day")
    with pytest.raises(SynthwearError) as raised:
        days(values, Source(tmp_path / "a.json"))
    assert str(raised.value) == f"{tmp_path / 'a.json'}: record 1: 'day' {problem} ('{written}')"


def test_days_before_any_device_or_after_today_are_left_out_per_person_with_a_note():
    frame = pd.DataFrame(
        {
            "person_id": ["person-1"] * 4 + ["person-2"] * 2,
            "date": pd.to_datetime(
                ["1999-12-31", "2000-01-01", "2026-11-30", "2026-12-01", "2026-12-02", "1970-01-01"]
            ),
            "steps": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        }
    )
    notes: list[str] = []
    kept = without_implausible_days(frame, notes, pd.Timestamp(2026, 11, 30))
    assert kept["steps"].tolist() == [2.0, 3.0, 4.0]  # the day after today: a time zone ahead
    assert notes == [
        "person-1: 1 day(s) dated before 2000-01-01 or after 2026-12-01 (a device clock set wrong?) left out: 1999-12-31",
        "person-2: 2 day(s) dated before 2000-01-01 or after 2026-12-01 (a device clock set wrong?) left out: "
        "2026-12-02, 1970-01-01",
    ]
