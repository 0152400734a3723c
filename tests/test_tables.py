import datetime
import warnings

import pandas as pd
import pytest
from test_run_folder import denied_writing

from synthwear.errors import SynthwearError
from synthwear.tables import (
    atomic_path,
    check_output_file,
    fingerprint,
    read_daily_table,
    read_person_table,
    write_daily_table,
)

CHANNELS = ["resting_hr", "sleep_minutes", "steps"]


def csv(tmp_path, text: str):
    path = tmp_path / "daily.csv"
    path.write_text(text)
    return path


def read(path, **kw):
    return read_daily_table(path, CHANNELS, nonnegative=("sleep_minutes", "steps"), **kw)


GOOD = "person_id,date,resting_hr,sleep_minutes,steps\na,2021-01-01,60,400,1000\na,2021-01-02,,410,2000\n"


def test_reads_and_types(tmp_path):
    frame = read(csv(tmp_path, GOOD))
    assert list(frame.columns) == ["person_id", "date", *CHANNELS]
    assert frame["date"].dtype.kind == "M" and frame["resting_hr"].isna().sum() == 1


def test_reads_text_columns_of_pandas_3(tmp_path):
    """pandas 3 reads text as its "str" dtype, not object: empty and spelled-out missing cells
    must still read as missing, and numbers written as text as numbers."""
    text = GOOD + "b,2021-01-01, NA ,,500\nb,2021-01-02, 62 ,null,3000\n"
    with pd.option_context("future.infer_string", True):
        frame = read(csv(tmp_path, text))
    assert frame["resting_hr"].tolist() == pytest.approx([60.0, float("nan"), float("nan"), 62.0], nan_ok=True)
    assert frame["sleep_minutes"].isna().sum() == 2 and frame["steps"].tolist() == [1000, 2000, 500, 3000]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", "the file is empty"),
        ("person_id,date,resting_hr,sleep_minutes\na,2021-01-01,60,400\n", "missing column 'steps'"),
        (GOOD + "a,2021-13-45,60,400,1000\n", r"line 4: column 'date': '2021-13-45' is not a date written ISO"),
        (GOOD + "a,1600-01-01,60,400,1000\n", r"line 4: column 'date': '1600-01-01' is outside 1677-09-22..2262-04-11"),
        (" person_id,date\nx,2021-01-01\n", r"missing column 'person_id' \(columns present: ' person_id', 'date'\)"),
        (GOOD + "b,03/05/2021,60,400,1000\n", r"line 4: column 'date': '03/05/2021' is not a date .* never guessed"),
        (GOOD.replace("steps\n", "steps,steps\n"), r"column 'steps' appears more than once"),
        (GOOD.replace(",60,", ",,"), r"column 'resting_hr' has no observed value"),
        (GOOD + "a,2021-01-02,61,400,1000\n", r"line 4: duplicate person-day \(a, 2021-01-02\)"),
        (GOOD + "b,2021-01-01,sixty,400,1000\n", r"line 4: column 'resting_hr': 'sixty' is not a number"),
        (GOOD + "b,2021-01-01,60,400,-5\n", r"line 4: column 'steps': negative value -5"),
        ("person_id,date,resting_hr,sleep_minutes,steps\n", "no rows"),
        (GOOD + "b,2021-01-01,60,400,1\x0000\n", r"line 4: holds a NUL byte"),  # pandas would read 1
    ],
)
def test_bad_input_is_one_line_naming_file_and_place(tmp_path, text, expected):
    path = csv(tmp_path, text)
    with pytest.raises(SynthwearError, match=expected) as err:
        read(path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_column_mapping_and_parquet(tmp_path):
    frame = pd.DataFrame(
        {
            "user": ["a", "a"],
            "day": pd.to_datetime(["2021-01-01", "2021-01-02"]),
            "resting_hr": [60.0, 61.0],
            "sleep_minutes": [400, 410],
            "steps": [1, 2],
        }
    )
    path = tmp_path / "d.parquet"
    frame.to_parquet(path)
    out = read(path, columns={"person_id": "user", "date": "day"})
    assert out["person_id"].tolist() == ["a", "a"] and out["steps"].tolist() == [1.0, 2.0]


def parquet(tmp_path, **columns):
    frame = pd.DataFrame({"person_id": ["a", "a"], "resting_hr": [60.0, 61.0], "sleep_minutes": [400, 410]})
    frame = frame.assign(date=pd.to_datetime(["2021-01-01", "2021-01-02"]), steps=[1, 2]).assign(**columns)
    path = tmp_path / "d.parquet"
    frame.to_parquet(path)
    return path


def test_a_parquet_date_column_is_read_as_the_days_it_holds(tmp_path):
    days = [datetime.date(2021, 1, 1), datetime.date(2021, 1, 2)]  # pyarrow writes date32, pandas reads objects
    out = read(parquet(tmp_path, date=days))
    assert out["date"].tolist() == list(pd.to_datetime(days))


def test_parquet_byte_string_ids_are_read_as_their_text_and_bad_bytes_are_named(tmp_path):
    out = read(parquet(tmp_path, person_id=[b"p01", b"p01"]))
    assert out["person_id"].tolist() == ["p01", "p01"]
    with pytest.raises(SynthwearError, match=r"row 2: column 'person_id': b'\\xff' is not UTF-8 text"):
        read(parquet(tmp_path, person_id=[b"p01", b"\xff"]))


@pytest.mark.parametrize("cells", [[[1, 2], [3]], [{"a": 1}, {"a": 2}]])
def test_a_parquet_list_or_struct_channel_is_refused_as_several_values_a_day(tmp_path, cells):
    with pytest.raises(
        SynthwearError, match=r"row 1: column 'steps': .* is not a number \(one value per day is read\)"
    ):
        read(parquet(tmp_path, steps=cells))


def test_a_parquet_dictionary_date_column_is_read_as_the_dates_it_encodes(tmp_path):
    out = read(parquet(tmp_path, date=pd.Categorical(["2021-01-01", "2021-01-02"])))
    assert out["date"].tolist() == list(pd.to_datetime(["2021-01-01", "2021-01-02"]))


def test_a_parquet_decimal_channel_is_read_as_numbers(tmp_path):
    import decimal

    out = read(parquet(tmp_path, steps=[decimal.Decimal("1.50"), decimal.Decimal("2")]))
    assert out["steps"].tolist() == [1.5, 2.0]


@pytest.mark.parametrize(
    "columns, expected",
    [
        ({"date": [20210101, 20210102]}, r"row 1: column 'date': 20210101 is not a date"),  # not 1970's nanoseconds
        ({"steps": [True, False]}, r"row 1: column 'steps': True is not a number \(the column holds true/false\)"),
        ({"steps": [1.0, float("inf")]}, r"row 2: column 'steps': inf is not finite"),
        ({"steps": [b"1", b"x"]}, r"row 2: column 'steps': b'x' is not a number"),
    ],
)
def test_typed_columns_that_are_no_days_or_numbers_are_refused(tmp_path, columns, expected):
    with pytest.raises(SynthwearError, match=rf"d.parquet: {expected}"):
        read(parquet(tmp_path, **columns))


def test_write_round_trips_and_fingerprint_is_content_based(tmp_path):
    frame = read(csv(tmp_path, GOOD))
    write_daily_table(frame, tmp_path / "out.csv")
    again = read(tmp_path / "out.csv")
    assert fingerprint(again) == fingerprint(frame)
    assert fingerprint(frame.assign(steps=frame["steps"] + 1)) != fingerprint(frame)


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "result.csv"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_a_stated_date_format_is_used_as_stated(tmp_path):
    path = csv(tmp_path, "person_id,date,resting_hr,sleep_minutes,steps\na,03/05/2021,60,400,1000\n")
    assert read(path, date_format="%d/%m/%Y")["date"].iloc[0] == pd.Timestamp("2021-05-03")
    assert read(path, date_format="%m/%d/%Y")["date"].iloc[0] == pd.Timestamp("2021-03-05")


def test_a_persons_table_is_read_as_text_and_needs_person_ids(tmp_path):
    (tmp_path / "p.csv").write_text("person_id,bmi\np1 ,<19\n p2,\n")
    table = read_person_table(tmp_path / "p.csv")
    assert table["bmi"].tolist() == ["<19", ""]  # typed later by the attribute model
    assert table["person_id"].tolist() == ["p1", "p2"]  # stripped, as the daily table's ids are
    (tmp_path / "e.csv").write_text("person_id,bmi\np1,20\n ,21\n")
    with pytest.raises(SynthwearError, match="e.csv: line 3: column 'person_id': no person id"):
        read_person_table(tmp_path / "e.csv")
    (tmp_path / "q.csv").write_text("user,bmi\np1,20\n")
    with pytest.raises(SynthwearError, match="no 'person_id' column"):
        read_person_table(tmp_path / "q.csv")
    assert list(read_person_table(tmp_path / "q.csv", ids=False).columns) == ["user", "bmi"]
    with pytest.raises(SynthwearError, match="no such file"):
        read_person_table(tmp_path / "missing.csv")
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(SynthwearError, match=r"folder.csv: is a folder; give the persons table's CSV or Parquet"):
        read_person_table(tmp_path / "folder.csv")
    (tmp_path / "r.csv").write_text("gender,gender\nfemale,male\n")  # pandas reads the second as 'gender.1'
    with pytest.raises(SynthwearError, match="r.csv: column 'gender' appears more than once in the header"):
        read_person_table(tmp_path / "r.csv", ids=False)


def test_dates_keep_the_day_written_whatever_time_zone_offset_they_carry(tmp_path):
    """A wearable's day is its wearer's local day: offsets, which differ across a daylight saving change,
    are dropped, never converted to another day, and pandas' notice about them is not shown."""
    path = csv(
        tmp_path,
        "person_id,date,resting_hr,sleep_minutes,steps\n"
        "a,2021-03-27T23:30:00+01:00,60,400,1000\na,2021-03-28T00:30:00+02:00,61,410,2000\na,2021-03-29,62,420,3000\n"
        "b,2021-03-27T23:30:00+01:00,60,400,1000\n",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        dates = read(path)["date"]
    assert dates.dt.strftime("%Y-%m-%d").tolist() == ["2021-03-27", "2021-03-28", "2021-03-29", "2021-03-27"]


def test_a_folder_is_not_a_table(tmp_path):
    with pytest.raises(SynthwearError, match="is a folder, not a CSV or Parquet file"):
        read(tmp_path)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("cohort.csv.gz", r"ending in .csv or .parquet \(the suffix chooses the format; .gz is neither\)"),
        ("cohort.xlsx", r".xlsx is neither"),
        ("cohort", "no suffix is neither"),  # also `-o cohort/`, meant as a folder
        ("notes.txt/cohort.csv", r"notes.txt is a file, not a folder"),
        ("missing/cohort.csv", r"the folder .*missing does not exist"),
    ],
)
def test_an_output_file_is_refused_before_any_work_unless_it_can_be_written_as_named(tmp_path, name, expected):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(SynthwearError, match=expected):
        check_output_file(tmp_path / name, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_file_that_cannot_be_written_is_one_line_and_leaves_nothing(tmp_path):
    (tmp_path / "report.html").mkdir()  # a folder where the file goes
    with (
        pytest.raises(SynthwearError, match="report.html: cannot be written"),
        atomic_path(tmp_path / "report.html") as tmp,
    ):
        tmp.write_text("<html></html>")
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(SynthwearError, match="cannot be written"), atomic_path(tmp_path / "notes.txt" / "x.csv"):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "report.html"]


def test_an_output_file_in_a_folder_the_user_cannot_write_to_is_refused(tmp_path, monkeypatch):
    denied_writing(monkeypatch, tmp_path)
    with pytest.raises(SynthwearError, match=rf"synthetic.csv: the folder {tmp_path} is not writable"):
        check_output_file(tmp_path / "synthetic.csv", overwrite=False)
