"""The Apple Health importer: the hand-written sample export, and small written exports for each rule
(one source per instant for steps, the union of asleep time, local days on the record's own clock,
daylight-saving days, zips, several persons, extra channels, one-line errors)."""

import shutil
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pluggy
import pytest
import yaml

from synthwear import hookspecs
from synthwear.default_plugins import apple_health
from synthwear.default_plugins.apple_health import AppleHealthImporter, read_apple_health
from synthwear.errors import SynthwearError
from synthwear.interfaces import Importer
from synthwear.plugins import Registry
from synthwear.recipe import parse_recipe
from synthwear.steps import load_data

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "apple_health_sample"
RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "tiny.yaml"
CORE = ["person_id", "date", "resting_hr", "sleep_minutes", "steps"]
STEPS = "HKQuantityTypeIdentifierStepCount"
SLEEP = "HKCategoryTypeIdentifierSleepAnalysis"
UNITS = {STEPS: "count", "HKQuantityTypeIdentifierRestingHeartRate": "count/min"}
WATCH = 'sourceName="Sam’s Apple Watch" device="&lt;&lt;HKDevice: 0x1&gt;, name:Apple Watch, model:Watch&gt;"'
PHONE = 'sourceName="Sam’s iPhone" device="&lt;&lt;HKDevice: 0x2&gt;, name:iPhone, model:iPhone&gt;"'
FIRST_RECORD_LINE = 4  # after the declaration, <HealthData> and <ExportDate> (see `export`)


def record(kind: str, start: str, end: str, value, source: str = WATCH, unit: str | None = None) -> str:
    unit = UNITS.get(kind) if unit is None else unit
    unit_attribute = f' unit="{unit}"' if unit else ""
    return f'<Record type="{kind}" {source}{unit_attribute} startDate="{start}" endDate="{end}" value="{value}"/>'


def steps(start: str, end: str, count: float, source: str = WATCH) -> str:
    return record(STEPS, start, end, count, source)


def sleep(start: str, end: str, stage: str = "AsleepCore", source: str = WATCH) -> str:
    return record(SLEEP, start, end, f"HKCategoryValueSleepAnalysis{stage}", source)


def export(*records: str, exported: str | None = "2024-01-01 12:00:00 +0000") -> str:
    """An export.xml as the Health app writes it, without the DTD; records from line 4 on."""
    export_date = f'<ExportDate value="{exported}"/>' if exported else "<!-- no ExportDate -->"
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<HealthData locale="en_GB">', export_date, *records]
    return "\n".join([*lines, "</HealthData>", ""])


def write(folder: Path, *records: str, **options) -> Path:
    """One person's folder holding export.xml."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "export.xml").write_text(export(*records, **options), encoding="utf-8")
    return folder


def zip_export(file: Path, text: str, name: str = "export.xml", **others: str) -> Path:
    """An export.zip laid out like the Health app's, with ``others`` as further members."""
    file.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(file, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"apple_health_export/{name}", text)
        for member, content in others.items():
            archive.writestr(f"apple_health_export/{member}", content)
    return file


def by_day(frame: pd.DataFrame, column: str) -> dict[str, float]:
    rows = frame.dropna(subset=[column])
    return dict(zip(rows["date"].dt.strftime("%Y-%m-%d"), rows[column]))


# --- the sample export (tests/data/apple_health_sample, Europe/Berlin, iPhone + Apple Watch) -------


@pytest.fixture(scope="module")
def sample() -> tuple[pd.DataFrame, list[str]]:
    result = read_apple_health(SAMPLE)
    return result.frame, result.notes


def test_sample_days(sample):
    frame, _ = sample
    assert list(frame.columns) == [*CORE, "hrv_sdnn", "spo2", "respiratory_rate"]
    assert frame["person_id"].unique().tolist() == ["person-1"]
    assert frame["date"].dtype == "datetime64[ns]"
    # 2023-03-28 is the export's day (ExportDate 08:15): dropped, though the iPhone has 120 steps on it
    assert frame["date"].dt.strftime("%Y-%m-%d").tolist() == ["2023-03-25", "2023-03-26", "2023-03-27"]
    # steps, 25th: watch 1000 (09:00-09:10) + phone 900 over 09:02-09:12 of which 8 of 10 min are
    # the watch's: 900 * 2/10 = 180 + phone 1500 (15:00-15:30, watch off) + half of the watch's 600
    # over 23:30-00:30 = 300: 2980.  26th (DST, 23 h): the other 300 + phone 100 over 01:55 +0100 ..
    # 03:05 +0200 (10 real minutes, no watch steps then) + watch 800 (10:00-10:20) + phone 400 inside
    # those 20 minutes = 0: 1200.  27th: watch 2000.
    assert by_day(frame, "steps") == {"2023-03-25": 2980, "2023-03-26": 1200, "2023-03-27": 2000}
    # sleep, night to the 26th: phone asleep 23:00-00:00 +0100 and watch core 23:10-01:40 +0100 are one
    # stretch 23:00-01:40 = 160 min; awake 01:40-01:50 is not counted; deep 01:50 +0100 (00:50Z) ..
    # 03:20 +0200 (01:20Z) = 30 and REM 03:20-07:00 = 220 join: 250; 160 + 250 = 410 (in bed 22:45 ..
    # 07:30 is not sleep). Night to the 27th: 23:40-06:40 +0200 = 420.
    assert by_day(frame, "sleep_minutes") == {"2023-03-26": 410, "2023-03-27": 420}
    assert by_day(frame, "resting_hr") == {"2023-03-25": 58, "2023-03-26": 56, "2023-03-27": 57}
    assert by_day(frame, "hrv_sdnn") == {"2023-03-26": 49}  # (45.5 + 52.5) / 2
    assert by_day(frame, "spo2") == {"2023-03-26": pytest.approx(97)}  # (0.96 + 0.98) / 2 * 100
    assert by_day(frame, "respiratory_rate") == {"2023-03-26": 14.5}


def test_sample_notes_say_what_was_merged_and_dropped(sample):
    _, notes = sample
    assert notes == [
        # 4 watch + 5 phone records; the phone's 09:02 and 10:05 records overlap the watch:
        # 900 - 180 + 400 - 0 = 1120 steps the watch already counted
        "person-1: steps: 9 records from 2 sources (Apple Watch, iPhone) in that priority; 2 overlapped a "
        "higher-priority source and counted only outside it (1,120 steps not counted twice)",
        # 60 + 150 + 30 + 220 + 420 = 880 minutes of records, 410 + 420 = 830 in their union
        "person-1: sleep_minutes: 5 asleep records from 2 sources (Apple Watch, iPhone); 50 overlapping minutes "
        "counted once; 2 sleeps on 2 days; in-bed and awake records not counted (1 awake, 1 in-bed)",
        "person-1: resting_hr: 3 records on 3 days (0 days with several values: their mean)",
        "person-1: hrv_sdnn: 2 records on 1 day (1 day with several values: their mean)",
        "person-1: spo2: 2 records on 1 day (1 day with several values: their mean)",
        "person-1: respiratory_rate: 1 record on 1 day (0 days with several values: their mean)",
        "person-1: 2023-03-28 dropped, the export was written that day (the day is incomplete)",
    ]
    assert not any("Alex" in note for note in notes)  # sources by kind, never by their owner's name


# --- steps: one source per instant -------------------------------------------------------------


def test_overlapping_phone_and_watch_steps_count_once(tmp_path):
    write(
        tmp_path / "p",
        steps("2023-06-01 08:05:00 +0100", "2023-06-01 08:25:00 +0100", 800, PHONE),  # file order: phone first
        steps("2023-06-01 12:00:00 +0100", "2023-06-01 12:10:00 +0100", 300, PHONE),
        steps("2023-06-01 08:00:00 +0100", "2023-06-01 08:10:00 +0100", 1000),
        steps("2023-06-01 08:10:00 +0100", "2023-06-01 08:20:00 +0100", 500),
    )
    frame = read_apple_health(tmp_path / "p").frame
    # the watch counts first: 1000 + 500; the phone's 800 over 08:05-08:25 is covered by the watch
    # for 08:05-08:20 (15 of 20 min): 800 * 5/20 = 200; its 12:00 record (watch off) counts: 300.
    # 2000 steps; summing every record would give 2600.
    assert frame["steps"].tolist() == [2000]


def test_without_a_watch_the_source_with_most_records_counts_first(tmp_path):
    app = 'sourceName="Pedometer++"'
    write(
        tmp_path / "p",
        steps("2023-06-01 08:00:00 +0000", "2023-06-01 08:20:00 +0000", 400, app),
        *(steps(f"2023-06-01 {h}:00:00 +0000", f"2023-06-01 {h}:10:00 +0000", 100, PHONE) for h in ("08", "09", "10")),
    )
    result = read_apple_health(tmp_path / "p")
    # the phone (3 records) first: 300; the app's 400 over 08:00-08:20, 10 of 20 min the phone's: 200.
    # (The app first would give 400 + 0 + 100 + 100 = 600.)
    assert result.frame["steps"].tolist() == [500]
    assert "from 2 sources (iPhone, other app) in that priority" in result.notes[0]


def test_exact_duplicate_records_count_once(tmp_path):
    twice = steps("2023-06-01 08:00:00 +0000", "2023-06-01 08:10:00 +0000", 250)
    write(tmp_path / "p", twice, twice, steps("2023-06-01 09:00:00 +0000", "2023-06-01 09:10:00 +0000", 50))
    result = read_apple_health(tmp_path / "p")
    assert result.frame["steps"].tolist() == [300]
    assert result.notes[0].endswith("; 1 exact duplicate record counted once")


# --- sleep: union of asleep time, on the wake-up day -------------------------------------------


def test_sleep_from_two_sources_counts_overlap_once_and_not_in_bed_or_awake(tmp_path):
    write(
        tmp_path / "p",
        sleep("2023-05-01 22:15:00 +0100", "2023-05-02 06:45:00 +0100", "InBed", PHONE),
        sleep("2023-05-01 22:30:00 +0100", "2023-05-02 00:30:00 +0100", "AsleepUnspecified", PHONE),
        sleep("2023-05-01 23:00:00 +0100", "2023-05-02 01:00:00 +0100", "AsleepCore"),
        sleep("2023-05-02 01:00:00 +0100", "2023-05-02 01:10:00 +0100", "Awake"),
        sleep("2023-05-02 01:10:00 +0100", "2023-05-02 06:30:00 +0100", "AsleepDeep"),
    )
    frame = read_apple_health(tmp_path / "p").frame
    # union: 22:30-01:00 = 150 min (the phone's 22:30-00:30 and the watch's 23:00-01:00 overlap for
    # 90 min, counted once) + 01:10-06:30 = 320 min: 470, on the wake-up day 2023-05-02.
    # Summing the asleep records would give 120 + 120 + 320 = 560; in bed alone is 510.
    assert by_day(frame, "sleep_minutes") == {"2023-05-02": 470}


def test_sleep_is_credited_to_the_day_it_ends_and_naps_to_their_own_day(tmp_path):
    write(
        tmp_path / "p",
        sleep("2023-05-01 15:00:00 +0100", "2023-05-01 15:45:00 +0100"),  # a nap, 6 h before the night
        sleep("2023-05-01 22:00:00 +0100", "2023-05-01 23:50:00 +0100"),  # the night's start, before midnight
        sleep("2023-05-01 23:50:00 +0100", "2023-05-02 00:05:00 +0100", "Awake"),
        sleep("2023-05-02 00:05:00 +0100", "2023-05-02 06:00:00 +0100"),
        sleep("2023-05-02 14:00:00 +0100", "2023-05-02 14:30:00 +0100"),  # a nap
    )
    frame = read_apple_health(tmp_path / "p").frame
    # May 1: the nap, 45. May 2: the night 110 + 355 = 465 (its part before midnight included: the
    # 15-minute awake gap is inside one sleep) + the nap 30 = 495.
    assert by_day(frame, "sleep_minutes") == {"2023-05-01": 45, "2023-05-02": 495}


# --- days on the record's own clock ------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "day"),
    [
        ("2023-05-01 23:30:00 +0100", "2023-05-01 23:40:00 +0100", "2023-05-01"),
        ("2023-05-02 00:30:00 +0200", "2023-05-02 00:40:00 +0200", "2023-05-02"),  # the same instant
        ("2023-05-01 17:30:00 -0500", "2023-05-01 17:40:00 -0500", "2023-05-01"),  # and again
    ],
)
def test_day_is_the_local_day_of_the_records_own_offset(tmp_path, monkeypatch, start, end, day):
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")  # +14: the machine's zone must not matter
    time.tzset()
    try:
        frame = read_apple_health(write(tmp_path / "p", steps(start, end, 70))).frame
    finally:
        monkeypatch.undo()
        time.tzset()
    assert by_day(frame, "steps") == {day: 70}


def test_travel_follows_the_clock_of_each_record(tmp_path):
    write(
        tmp_path / "p",
        steps("2023-05-01 20:00:00 +0100", "2023-05-01 20:10:00 +0100", 100),  # London, 19:00Z
        steps("2023-05-02 00:30:00 +0300", "2023-05-02 00:40:00 +0300", 50),  # landed in Athens, 21:30Z on May 1
        steps("2023-05-02 23:50:00 +0300", "2023-05-03 00:10:00 +0300", 200),  # 10 min each side of midnight
        sleep("2023-05-02 01:00:00 +0300", "2023-05-02 08:00:00 +0300"),
    )
    frame = read_apple_health(tmp_path / "p").frame
    assert by_day(frame, "steps") == {"2023-05-01": 100, "2023-05-02": 50 + 100, "2023-05-03": 100}
    assert by_day(frame, "sleep_minutes") == {"2023-05-02": 420}


def test_daylight_saving_days(tmp_path):
    write(
        tmp_path / "p",
        # Europe/Berlin, 2023-03-26: 02:00 +0100 becomes 03:00 +0200 (a 23-hour day)
        steps("2023-03-25 23:30:00 +0100", "2023-03-26 00:30:00 +0100", 600),  # 300 on each day
        steps("2023-03-26 01:50:00 +0100", "2023-03-26 03:10:00 +0200", 400),  # 20 real minutes
        steps("2023-03-26 23:50:00 +0200", "2023-03-27 00:10:00 +0200", 200),  # 100 on each day
        sleep("2023-03-25 23:00:00 +0100", "2023-03-26 07:00:00 +0200"),  # 22:00Z-05:00Z: 7 h, not 8
        # 2023-10-29: 03:00 +0200 becomes 02:00 +0100 (a 25-hour day)
        steps("2023-10-29 00:00:00 +0200", "2023-10-30 00:00:00 +0100", 2500),  # an app's daily total
        sleep("2023-10-28 23:00:00 +0200", "2023-10-29 07:00:00 +0100"),  # 21:00Z-06:00Z: 9 h
    )
    frame = read_apple_health(tmp_path / "p").frame
    assert by_day(frame, "steps") == {
        "2023-03-25": 300,
        "2023-03-26": 300 + 400 + 100,
        "2023-03-27": 100,
        "2023-10-29": 2500,  # all 25 hours are the 29th: none spills into the 30th
    }
    assert by_day(frame, "sleep_minutes") == {"2023-03-26": 420, "2023-10-29": 540}


def test_a_record_across_midnight_and_a_clock_change_is_cut_at_the_midnight_before_it(tmp_path):
    """Clocks change in the small hours: the midnight inside such a record is on its start's offset."""
    write(
        tmp_path / "p",
        steps("2023-03-25 23:00:00 +0100", "2023-03-26 03:00:00 +0200", 1200),  # 3 real hours, 1 before midnight
        steps("2023-10-28 23:00:00 +0200", "2023-10-29 03:00:00 +0100", 1500),  # 5 real hours, 1 before midnight
    )
    frame = read_apple_health(tmp_path / "p").frame
    assert by_day(frame, "steps") == {"2023-03-25": 400, "2023-03-26": 800, "2023-10-28": 300, "2023-10-29": 1200}


# --- where the export is -----------------------------------------------------------------------


def test_zip_export_is_read_without_extracting(tmp_path):
    text = (SAMPLE / "export.xml").read_text(encoding="utf-8")
    cda = '<?xml version="1.0"?>\n<ClinicalDocument xmlns="urn:hl7-org:v3"></ClinicalDocument>\n'
    zipped = zip_export(
        tmp_path / "p" / "export.zip", text, **{"export_cda.xml": cda, "workout-routes/route_1.gpx": "<gpx/>"}
    )
    expected = read_apple_health(SAMPLE).frame
    pd.testing.assert_frame_equal(read_apple_health(zipped).frame, expected)  # the zip named
    pd.testing.assert_frame_equal(read_apple_health(tmp_path / "p").frame, expected)  # its folder
    assert [path.name for path in (tmp_path / "p").iterdir()] == ["export.zip"]  # nothing extracted


def test_localised_export_inside_the_zip_is_found_by_its_root(tmp_path):
    cda = '<?xml version="1.0"?>\n<ClinicalDocument xmlns="urn:hl7-org:v3"></ClinicalDocument>\n'
    text = export(steps("2023-06-01 08:00:00 +0000", "2023-06-01 08:10:00 +0000", 42))
    zipped = zip_export(tmp_path / "exportar.zip", text, name="exportar.xml", **{"exportar_cda.xml": cda})
    assert read_apple_health(zipped).frame["steps"].tolist() == [42]


def test_zip_without_an_export_is_an_error(tmp_path):
    zipped = zip_export(tmp_path / "export.zip", "<gpx/>", name="workout-routes/route_1.gpx")
    with pytest.raises(SynthwearError) as raised:
        read_apple_health(zipped)
    assert str(raised.value) == f"{zipped}: expected one Apple Health export.xml in the zip, found none"


def test_zip_member_zipfile_cannot_unpack_is_a_one_line_error(tmp_path):
    """A member compressed with a method Python's zipfile lacks (here Deflate64's number, 9)."""
    zipped = zip_export(
        tmp_path / "export.zip", export(steps("2023-06-01 08:00:00 +0000", "2023-06-01 08:10:00 +0000", 1))
    )
    data = bytearray(zipped.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):  # local header, central directory
        at = data.index(signature)
        data[at + offset : at + offset + 2] = (9).to_bytes(2, "little")
    zipped.write_bytes(bytes(data))
    with pytest.raises(SynthwearError, match=r"export.zip: cannot unpack \(.*\); unzip it and import the folder$"):
        read_apple_health(zipped)


@pytest.mark.parametrize("year", ["0001", "9999"])
def test_records_beyond_the_dates_a_table_holds_are_a_one_line_error(tmp_path, year):
    folder = write(tmp_path / "p", steps(f"{year}-06-01 08:00:00 +0000", f"{year}-06-01 08:10:00 +0000", 5))
    with pytest.raises(SynthwearError, match="person-1: steps has records dated outside 1677-09-22..2262-04-11"):
        read_apple_health(folder)


def test_several_persons_one_folder_each(tmp_path):
    write(tmp_path / "b", steps("2023-06-01 08:00:00 +0000", "2023-06-01 08:10:00 +0000", 20))
    zip_export(tmp_path / "a" / "export.zip", (SAMPLE / "export.xml").read_text(encoding="utf-8"))
    unzipped = tmp_path / "c" / "apple_health_export"
    unzipped.mkdir(parents=True)
    (unzipped / "export.xml").write_text(export(steps("2023-06-02 08:00:00 +0000", "2023-06-02 08:10:00 +0000", 30)))
    (tmp_path / "d").mkdir()
    result = read_apple_health(tmp_path)
    frame = result.frame
    assert frame["person_id"].value_counts().to_dict() == {"person-1": 3, "person-2": 1, "person-3": 1}
    assert by_day(frame[frame["person_id"] == "person-2"], "steps") == {"2023-06-01": 20}  # folder b
    assert by_day(frame[frame["person_id"] == "person-3"], "steps") == {"2023-06-02": 30}  # folder c
    assert f"sub-folder 4 of {tmp_path}: no {apple_health.EXPECTED}, skipped" in result.notes
    assert "person-2: no HKCategoryTypeIdentifierSleepAnalysis records, sleep_minutes left empty" in result.notes


def test_not_an_export_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SynthwearError, match="no export found"):
        read_apple_health(tmp_path)
    with pytest.raises(SynthwearError, match="does not exist"):
        read_apple_health(tmp_path / "missing")


# --- channels ----------------------------------------------------------------------------------


def test_extra_channels_appear_only_when_the_export_has_them(tmp_path):
    only_steps = read_apple_health(
        write(tmp_path / "a", steps("2023-06-01 08:00:00 +0000", "2023-06-01 08:10:00 +0000", 5))
    )
    assert list(only_steps.frame.columns) == CORE
    assert only_steps.frame["resting_hr"].isna().all() and only_steps.frame["sleep_minutes"].isna().all()
    spo2 = "HKQuantityTypeIdentifierOxygenSaturation"
    write(
        tmp_path / "b",
        record(
            "HKQuantityTypeIdentifierRestingHeartRate", "2023-06-01 00:01:00 +0000", "2023-06-01 23:59:00 +0000", 58
        ),
        record(
            "HKQuantityTypeIdentifierRestingHeartRate",
            "2023-06-01 07:00:00 +0000",
            "2023-06-01 07:00:00 +0000",
            62,
            'sourceName="Withings"',
        ),
        record(spo2, "2023-06-01 03:00:00 +0000", "2023-06-01 03:00:00 +0000", 0.97, unit="%"),
        record(spo2, "2023-06-01 04:00:00 +0000", "2023-06-01 04:00:00 +0000", 95, unit="%"),  # already percent
    )
    frame = read_apple_health(tmp_path / "b").frame
    assert list(frame.columns) == [*CORE, "spo2"]
    assert frame["resting_hr"].tolist() == [60]  # (58 + 62) / 2: two sources, their mean
    assert frame["spo2"].tolist() == [pytest.approx(96)]  # (97 + 95) / 2


def test_export_day_is_dropped_and_a_missing_export_date_is_noted(tmp_path):
    records = [steps(f"2023-06-0{d} 08:00:00 +0000", f"2023-06-0{d} 08:10:00 +0000", d) for d in (1, 2)]
    dated = read_apple_health(write(tmp_path / "a", *records, exported="2023-06-02 09:00:00 +0000"))
    assert by_day(dated.frame, "steps") == {"2023-06-01": 1}
    assert "person-1: 2023-06-02 dropped, the export was written that day (the day is incomplete)" in dated.notes
    undated = read_apple_health(write(tmp_path / "b", *records, exported=None))
    assert by_day(undated.frame, "steps") == {"2023-06-01": 1, "2023-06-02": 2}
    assert "person-1: no ExportDate in the export, its last day is kept and may be partial" in undated.notes


def test_a_record_of_a_reset_clock_is_left_out_with_a_note(tmp_path):
    records = [steps(f"{day} 08:00:00 +0000", f"{day} 08:10:00 +0000", 5) for day in ("1900-01-02", "2023-06-01")]
    future = steps("2200-01-02 08:00:00 +0000", "2200-01-02 08:10:00 +0000", 7)
    result = read_apple_health(write(tmp_path / "a", *records, future, exported=None))
    assert by_day(result.frame, "steps") == {"2023-06-01": 5}
    assert any(
        note.startswith("person-1: 2 day(s) dated before 2000-01-01 or after ")
        and note.endswith(": 1900-01-02, 2200-01-02")
        for note in result.notes
    ), result.notes


# --- bad input: one line naming the file and line ----------------------------------------------


GOOD = steps("2023-06-01 08:00:00 +0000", "2023-06-01 08:10:00 +0000", 5)


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        (
            steps("2023-06-01T08:00:00+01:00", "2023-06-01 08:10:00 +0000", 5),
            "line 5: 'startDate' is not a date like 2023-03-26 01:30:00 +0100 ('2023-06-01T08:00:00+01:00')",
        ),
        (
            steps("2023-06-01 08:00:00", "2023-06-01 08:10:00 +0000", 5),
            "line 5: 'startDate' is not a date like 2023-03-26 01:30:00 +0100 ('2023-06-01 08:00:00')",
        ),
        (
            f'<Record type="{STEPS}" {WATCH} unit="count" startDate="2023-06-01 08:00:00 +0000" value="5"/>',
            "line 5: no 'endDate' attribute",
        ),
        (
            steps("2023-06-01 08:00:00 +0000", "2023-06-01 08:10:00 +0000", "abc"),
            "line 5: 'value' is not a number ('abc')",
        ),
        *(
            (
                steps("2023-06-01 08:00:00 +0000", "2023-06-01 08:10:00 +0000", value),
                f"line 5: 'value' is not a finite number >= 0 ('{value}')",
            )
            for value in ("-3997", "inf", "nan")
        ),
        (
            steps("2023-06-01 08:00:00 +0000", "2023-06-01 08:10:00 +0000", 10_001),  # 10 minutes
            "line 5: 'value' is more than 1,000 steps a minute over the record's time, which no body does ('10001')",
        ),
        (
            record(
                "HKQuantityTypeIdentifierRestingHeartRate",
                "2023-06-01 08:00:00 +0000",
                "2023-06-01 08:00:00 +0000",
                57e6,
            ),
            "line 5: 'value' is more than 300 bpm, which no body does ('57000000.0')",
        ),
        *(
            (
                record(f"HKQuantityTypeIdentifier{kind}", *["2023-06-01 08:00:00 +0000"] * 2, 5000, unit=unit),
                f"line 5: 'value' is more than {most}, which no body does ('5000')",
            )
            for kind, unit, most in (
                ("HeartRateVariabilitySDNN", "ms", "1000 ms"),
                ("OxygenSaturation", "%", "100 %"),
                ("RespiratoryRate", "count/min", "150 breaths a minute"),
            )
        ),
        (
            record(STEPS, "2023-06-01 08:00:00 +0000", "2023-06-01 08:10:00 +0000", 5, unit="km"),
            f"line 5: 'unit' is 'km', expected 'count' for {STEPS}",
        ),
        (
            sleep("2023-06-01 01:00:00 +0000", "2023-06-01 02:00:00 +0000", "Dozing"),
            "line 5: 'value' is not a sleep analysis value ('HKCategoryValueSleepAnalysisDozing')",
        ),
        (
            steps("2023-06-01 08:10:00 +0000", "2023-06-01 08:00:00 +0000", 5),
            "line 5: 'endDate' is before 'startDate' ('2023-06-01 08:00:00 +0000')",
        ),
        ("<Record", "not valid XML (not well-formed (invalid token): line 6, column 0)"),
        ("<Record></HealthData>", "not valid XML (mismatched tag: line 5, column 10)"),
    ],
)
def test_bad_record_names_file_and_line_in_one_line(tmp_path, bad, expected):
    folder = write(tmp_path / "p", GOOD, bad)
    with pytest.raises(SynthwearError) as raised:
        read_apple_health(folder)
    assert str(raised.value) == f"{folder / 'export.xml'}: {expected}"


def test_truncated_export_and_errors_inside_a_zip_name_the_member(tmp_path):
    truncated = export(GOOD)[:-20]
    zipped = zip_export(tmp_path / "export.zip", truncated)
    with pytest.raises(SynthwearError) as raised:
        read_apple_health(zipped)
    message = str(raised.value)
    assert message.startswith(f"{zipped}/apple_health_export/export.xml: not valid XML (")
    assert "\n" not in message
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(SynthwearError, match="broken.zip: not a readable zip file"):
        read_apple_health(tmp_path / "broken.zip")


def test_ios16_invalid_dtd_and_vertical_tabs_are_tolerated_and_lines_stay_true(tmp_path):
    # iOS 16 exports lack a ">" at the end of an ATTLIST in the DTD, which no XML parser accepts
    dtd = "<!DOCTYPE HealthData [\n<!ATTLIST VisionPrescription\n  type CDATA #REQUIRED\n\n<!ELEMENT Record EMPTY>\n]>"
    text = export(steps("2023-06-01 08:00:00 +0000", "2023-06-01 08:10:00 +0000", 7, 'sourceName="Sam\x0bs iPhone"'))
    (tmp_path / "export.xml").write_text(text.replace("\n", f"\n{dtd}\n", 1))
    assert read_apple_health(tmp_path).frame["steps"].tolist() == [7]
    bad = export(steps("2023-06-01 08:00:00 +0000", "2023-06-01 08:10:00 +0000", "x")).replace("\n", f"\n{dtd}\n", 1)
    (tmp_path / "export.xml").write_text(bad)
    with pytest.raises(SynthwearError, match=r"export.xml: line 10: 'value' is not a number"):  # 4 + 6 DTD lines
        read_apple_health(tmp_path)


def test_large_export_shows_a_progress_bar(monkeypatch, capsys):
    monkeypatch.setattr(apple_health, "PROGRESS_BYTES", 0)
    read_apple_health(SAMPLE)
    assert "person-1: reading export" in capsys.readouterr().err


# --- the plugin path ---------------------------------------------------------------------------


def registry() -> Registry:
    pm = pluggy.PluginManager("synthwear")
    pm.add_hookspecs(hookspecs)
    pm.register(apple_health)
    return Registry(pm)


def test_hook_registers_the_apple_health_importer():
    registered = {entry.name: entry.obj for entry in registry().entries("importers")}
    assert list(registered) == ["apple_health"]
    importer = registered["apple_health"]
    assert isinstance(importer, AppleHealthImporter) and isinstance(importer, Importer)
    assert importer.description
    assert importer(SAMPLE).frame["steps"].tolist() == [2980, 1200, 2000]


def test_recipe_reads_an_apple_health_export_with_the_three_core_channels(tmp_path):
    shutil.copytree(SAMPLE, tmp_path / "exports" / "alex")
    raw = yaml.safe_load(RECIPE.read_text())
    raw["data"] = {"importer": "apple_health", "path": "exports"}
    recipe = parse_recipe(raw, source=tmp_path / "recipe.yaml")
    loaded = load_data(recipe, registry())
    assert list(loaded.frame.columns) == CORE  # hrv_sdnn, spo2, respiratory_rate: not in the recipe
    assert loaded.frame["steps"].tolist() == [2980, 1200, 2000]
    assert np.isnan(loaded.frame["sleep_minutes"].iloc[0])
    assert loaded.notes[0].startswith("person-1: steps: 9 records")
