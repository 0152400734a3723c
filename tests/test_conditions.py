import contextlib
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthwear.attributes import AttributeModel
from synthwear.conditions import (
    Allowed,
    Conditions,
    Quota,
    find_category,
    label_interval,
    largest_remainder,
    load_quotas,
    parse_quota,
    parse_where,
    quota_cells,
    quotas_from_mapping,
)
from synthwear.errors import SynthwearError


def one_line_error(call, match: str) -> str:
    with pytest.raises(SynthwearError, match=match) as err:
        call()
    assert "\n" not in str(err.value)
    return str(err.value)


@pytest.fixture(scope="module")
def model() -> AttributeModel:
    rng = np.random.default_rng(0)
    n = 400
    return AttributeModel.fit(
        pd.DataFrame(
            {
                "person_id": [f"p{i}" for i in range(n)],
                "age": rng.integers(20, 71, n).astype(float),
                "weight": rng.normal(75, 12, n),
                "gender": rng.choice(["female", "male"], n),
                "bmi": rng.choice(["<19", "20.0", "23.0", "27.0", ">=25", ">=30"], n),
                "smoker": rng.choice([0, 1], n),
                "country": ["NL"] * n,
            }
        )
    )


@pytest.mark.parametrize(
    "text, column, clauses",
    [
        ("gender == 'female'", "gender", (("==", ("female",)),)),
        ('gender != "male"', "gender", (("!=", ("male",)),)),
        ("age_group in ['<30', '>=30']", "age_group", (("in", ("<30", ">=30")),)),
        ("age_group not in ('<30')", "age_group", (("not in", ("<30",)),)),
        ("bmi >= 25", "bmi", ((">=", (25.0,)),)),
        ("bmi < 30", "bmi", (("<", (30.0,)),)),
        ("25 <= bmi < 30", "bmi", ((">=", (25.0,)), ("<", (30.0,)))),
        ("30 > bmi >= 25", "bmi", (("<", (30.0,)), (">=", (25.0,)))),
        ("40 == age", "age", (("==", (40.0,)),)),
        ("age == 40", "age", (("==", (40.0,)),)),
        ("weight>=-1.5e1", "weight", ((">=", (-15.0,)),)),
        ("`body weight` <= 80", "body weight", (("<=", (80.0,)),)),
        ("name == 'O\\'Brien'", "name", (("==", ("O'Brien",)),)),
        ("mean(sleep_minutes) < 300", "mean(sleep_minutes)", (("<", (300.0,)),)),
        ("6000 <= median( steps ) < 9000", "median(steps)", ((">=", (6000.0,)), ("<", (9000.0,)))),
        ("sd(`resting hr`) > 2", "sd(resting hr)", ((">", (2.0,)),)),
    ],
)
def test_parses_the_accepted_forms(text, column, clauses):
    cond = parse_where(text)
    assert (cond.column, cond.clauses, cond.text) == (column, clauses, text)
    assert (cond.statistic is not None) == column.endswith(")")


def test_conditions_on_days_are_apart_from_those_on_attributes():
    both = Conditions(["gender == 'female'", "max(steps) > 20000", "mean (steps) > 5"])
    assert [c.text for c in both.on_persons()] == ["gender == 'female'"]
    assert [c.statistic for c in both.on_days()] == [("max", "steps"), ("mean", "steps")]


@pytest.mark.parametrize(
    "text, problem",
    [
        ("", "the condition is empty"),
        ("gender = 'female'", "equality is '=='"),
        ("gender == female", "female is not quoted"),
        ("gender == 'female' and age > 3", "one condition per entry"),
        ("age >", "not a condition this language reads"),
        ("age > 'x'", "'>' compares numbers, and 'x' is text"),
        ("'a' < age < 'b'", "'<' compares numbers"),
        ("gender in []", "'in' takes a bracketed list"),
        ("gender in ['a' 'b']", "separated by commas"),
        ("gender in ['a', 1]", "mixes text and numbers"),
        ("25 <= age > 30", "a range is written low < column < high"),
        ("age >= 1e999", "not a finite number"),
        ("age ~ 3", "unexpected '~' at character 5"),
        ("age == 3 4", "not a condition"),
        ("__import__('os')", "not a condition"),
    ],
)
def test_a_bad_expression_says_what_and_the_accepted_forms(text, problem):
    message = one_line_error(lambda: parse_where(text), problem)
    assert "accepted forms" in message and message.startswith("--where")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from([*"ab_` '\"[](),.=!<>-+e0123456789\\", " in ", " not ", " and ", "age", "'x'"]), max_size=12
    ).map("".join)
)
def test_any_text_is_a_condition_or_one_line_error(text):
    try:
        cond = parse_where(text)
    except SynthwearError as err:
        assert "\n" not in str(err)
    else:
        assert cond.column and cond.clauses


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_arbitrary_unicode_never_raises_anything_else(text):
    with contextlib.suppress(SynthwearError):
        parse_where(text)


def test_check_resolves_categories_ranges_and_numeric_labels(model):
    allowed = Conditions(["gender == 'female'", "age >= 30", "age < 40", "bmi >= 25", "smoker == 1"]).check(model)
    assert allowed["gender"] == Allowed(frozenset({"female"}))
    assert allowed["age"].intervals == ((30.0, 39.0),)  # whole numbers: the strict bound becomes 39
    assert allowed["bmi"].categories == {"27.0", ">=25", ">=30"}  # '<19', '20.0', '23.0' lie below 25
    assert allowed["smoker"].categories == {"1"}
    # a label straddling the bound is never generated under it: '>=25' could be 31
    assert Conditions(["25 <= bmi < 30"]).check(model)["bmi"].categories == {"27.0"}
    # missing never satisfies: != keeps the known other categories only
    assert Conditions(["gender != 'male'"]).check(model)["gender"] == Allowed(frozenset({"female"}))
    assert Conditions(["weight != 80"]).check(model)["weight"].intervals[0][1] == math.nextafter(80, -math.inf)


def test_a_bound_partly_outside_the_fitted_range_is_accepted(model):
    assert Conditions(["age >= 0"]).check(model)["age"].intervals == ((20.0, 70.0),)


@pytest.mark.parametrize(
    "conditions, problem",
    [
        (["sex == 'f'"], r"unknown column 'sex' \(known: age, weight, gender, bmi, smoker\)"),
        (["country == 'NL'"], r"column 'country' was dropped when the model was fitted \(one value only \('NL'\)\)"),
        (["gender == 'fem'"], r"'fem' is not a category of 'gender' \(seen: 'female', 'male'\)"),
        (["gender != 'other'"], r"'other' is not a category of 'gender'"),
        (
            ["age >= 200"],
            r"no value the model was fitted on meets it \(column 'age' holds whole numbers from 20 to 70\)",
        ),
        (["age == 40.5"], r"no value the model was fitted on meets it"),
        (["weight < 0"], r"column 'weight' holds from"),
        (["age == 'old'"], r"column 'age' is numeric; compare it with numbers"),
        (["gender >= 3"], r"'gender' is categorical with no numeric categories"),
        (["bmi >= 31"], r"no category of 'bmi' lies wholly within it"),
        (["35 <= age < 32"], r"no value of 'age' meets it"),
        (["age > 50", "age < 40"], r"--where 'age > 50' and --where 'age < 40' contradict"),
        (["gender == 'female'", "gender == 'male'"], r"contradict: no value of 'gender' meets them all"),
    ],
)
def test_check_errors_name_the_column_and_value(model, conditions, problem):
    one_line_error(lambda: Conditions(conditions).check(model), problem)


def test_conditions_combine_with_and(model):
    both = Conditions(["age >= 30"]) & Conditions([parse_where("age <= 35")])
    assert len(both) == 2 and both.check(model)["age"].intervals == ((30.0, 35.0),)
    assert [c.text for c in both] == ["age >= 30", "age <= 35"]


@pytest.mark.parametrize(
    "label, span",
    [
        ("23.0", (23.0, 23.0)),
        ("<19", (-math.inf, math.nextafter(19, -math.inf))),
        ("<= 19", (-math.inf, 19.0)),
        (">30", (math.nextafter(30, math.inf), math.inf)),
        (">=25", (25.0, math.inf)),
        ("65+", (65.0, math.inf)),
        ("20-25", (20.0, 25.0)),
        ("20 to 25", (20.0, 25.0)),
        ("female", None),
        ("30-20", None),
        ("nan", None),
    ],
)
def test_label_interval(label, span):
    assert label_interval(label) == span


def test_find_category_matches_text_then_number():
    categories = ["<19", "20.0", "1"]
    assert find_category(categories, "<19") == "<19"
    assert find_category(categories, "20") == "20.0"
    assert find_category(categories, 1.0) == "1"
    assert find_category(categories, "female") is None


@pytest.mark.parametrize(
    "text, quota",
    [
        ("gender=female:0.5", Quota("gender", "female", 0.5, "gender=female:0.5")),
        ("age_group=>=30:0.4", Quota("age_group", ">=30", 0.4, "age_group=>=30:0.4")),
        ("gender='female':1", Quota("gender", "female", 1.0, "gender='female':1")),
    ],
)
def test_parse_quota(text, quota):
    assert parse_quota(text) == quota


@pytest.mark.parametrize(
    "text, problem",
    [
        ("gender=female", "a quota is column=category:share"),
        ("gender=:0.5", "a quota is column=category:share"),
        ("=female:0.5", "a quota is column=category:share"),
        ("gender=female:1.5", r"the share '1.5' is not a number in \(0, 1\]"),
        ("gender=female:half", r"the share 'half' is not a number"),
        ("gender=female:0", r"the share '0' is not a number"),
    ],
)
def test_bad_quota(text, problem):
    one_line_error(lambda: parse_quota(text), problem)


def test_quotas_from_a_mapping_and_a_yaml_file(tmp_path):
    quotas = quotas_from_mapping({"gender": {"female": 0.5, "male": 0.5}, "smoker": {1: 0.2}})
    assert [(q.column, q.value, q.share) for q in quotas] == [
        ("gender", "female", 0.5),
        ("gender", "male", 0.5),
        ("smoker", "1", 0.2),
    ]
    path = tmp_path / "quotas.yaml"
    path.write_text("gender:\n  female: 0.6\n")
    assert load_quotas(path) == [Quota("gender", "female", 0.6, "gender=female:0.6")]
    one_line_error(lambda: quotas_from_mapping(["gender"], "q.yaml"), r"q.yaml: quotas are a mapping of column")
    one_line_error(
        lambda: quotas_from_mapping({"smoker": {True: 0.5}}, "q.yaml"), r"q.yaml: smoker: True is not a category"
    )
    path.write_text("gender:\n  female: 0.6\n  female: 0.2\n")
    one_line_error(lambda: load_quotas(path), r"not valid YAML .*appears twice")
    one_line_error(lambda: load_quotas(tmp_path / "none.yaml"), r"none.yaml: cannot be read")


@pytest.mark.parametrize(
    "shares, n, counts",
    [
        ([0.5, 0.5], 1001, [501, 500]),
        ([1 / 3] * 3, 100, [34, 33, 33]),
        ([0.3, 0.7], 10, [3, 7]),
        ([0.2, 0.8], 0, [0, 0]),
    ],
)
def test_largest_remainder(shares, n, counts):
    assert largest_remainder(shares, n) == counts


def test_quota_cells_cross_columns_and_keep_the_rest(model):
    cells = quota_cells([parse_quota("gender=female:0.5"), parse_quota("smoker=1:0.3")], 1000, model, {})
    assert sum(count for _, count in cells) == 1000
    sizes = {(tuple(sorted(a["gender"].categories)), tuple(sorted(a["smoker"].categories))): c for a, c in cells}
    assert sizes == {
        (("female",), ("1",)): 150,
        (("female",), ("0",)): 350,
        (("male",), ("1",)): 150,
        (("male",), ("0",)): 350,
    }


@pytest.mark.parametrize(
    "quotas, where, problem",
    [
        (
            ["gender=female:0.7", "gender=male:0.5"],
            [],
            r"quotas on 'gender' sum to 1.2; shares of one column sum to at most 1",
        ),
        (["gender=female:0.5", "gender=male:0.3"], [], r"name every category; the other 0.2 has nothing to take"),
        (["gender=female:0.5", "gender=female:0.2"], [], r"'gender' = 'female' has two quotas"),
        (["gender=other:0.5"], [], r"'other' is not a category of 'gender' \(seen: 'female', 'male'\)"),
        (["age=40:0.5"], [], r"quotas name categories, and 'age' is numeric"),
        (["sex=f:0.5"], [], r"unknown column 'sex'"),
        (
            ["gender=female:0.5"],
            ["gender == 'male'"],
            r"--quota 'gender=female:0.5' contradicts the where conditions on 'gender'",
        ),
    ],
)
def test_quota_errors(model, quotas, where, problem):
    def call():
        quota_cells([parse_quota(q) for q in quotas], 100, model, Conditions(where).check(model))

    one_line_error(call, problem)
