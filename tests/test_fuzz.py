"""Fuzzing the two doors user input comes through, the recipe parser and the table loader: whatever
arrives, the answer is a valid object or one SynthwearError line, never another exception."""

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synthwear.errors import SynthwearError
from synthwear.recipe import load_recipe, parse_recipe
from synthwear.tables import read_daily_table

CHANNELS = ["resting_hr", "sleep_minutes", "steps"]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True), st.text(max_size=12)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
keys = st.sampled_from(
    ["name", "seed", "data", "channels", "windows", "split", "training", "sampling", "evaluation", "x"]
)
recipes = st.fixed_dictionaries(
    {"name": st.one_of(st.text(max_size=10), scalars), "data": st.one_of(values, st.just({"dataset": "lifesnaps"}))},
    optional={"channels": st.one_of(values, st.just({"steps": {"range": [0, 40000]}}))},
).flatmap(lambda base: st.dictionaries(keys, values, max_size=4).map(lambda extra: {**extra, **base}))


def one_line_error(err: SynthwearError) -> None:
    assert "\n" not in str(err) and str(err)


@SETTINGS
@given(raw=st.one_of(values, recipes))
def test_recipe_parser_answers_with_a_recipe_or_one_line(raw):
    try:
        parse_recipe(raw)
    except SynthwearError as err:
        one_line_error(err)


@SETTINGS
@given(text=st.text(alphabet=string.printable + "äé€\t", max_size=300))
def test_recipe_files_of_any_text(tmp_path, text):
    path = tmp_path / "r.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_recipe(path)
    except SynthwearError as err:
        one_line_error(err)


cells = st.one_of(
    st.just(""),
    st.text(alphabet='0123456789-.eE/:T ,"naNifx', max_size=12),
    st.sampled_from(["2021-01-01", "60", "NaN", "inf", "-5", "1e309"]),
)


@SETTINGS
@given(
    rows=st.lists(st.lists(cells, min_size=0, max_size=6), max_size=6),
    header=st.sampled_from(["person_id,date,resting_hr,sleep_minutes,steps", "person_id,date,steps", "", "a,b,c"]),
)
def test_tables_of_any_cells(tmp_path, rows, header):
    path = tmp_path / "daily.csv"
    path.write_text("\n".join([header, *(",".join(r) for r in rows)]) + "\n", encoding="utf-8")
    try:
        frame = read_daily_table(path, CHANNELS, nonnegative=("sleep_minutes", "steps"))
    except SynthwearError as err:
        one_line_error(err)
    else:
        assert list(frame.columns) == ["person_id", "date", *CHANNELS] and len(frame) > 0


@pytest.mark.parametrize("content", [b"\x00\x01\x02binary", "person_id,date\n".encode("utf-16")])
def test_binary_tables(tmp_path, content):
    path = tmp_path / "daily.csv"
    path.write_bytes(content)
    with pytest.raises(SynthwearError):
        read_daily_table(path, CHANNELS)
