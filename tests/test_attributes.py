import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm, rankdata

from synthwear.attributes import AttributeModel
from synthwear.conditions import Conditions, parse_quota
from synthwear.datasets import get_dataset
from synthwear.errors import SynthwearError

N = 20000


def one_line_error(call, match: str) -> str:
    with pytest.raises(SynthwearError, match=match) as err:
        call()
    assert "\n" not in str(err.value)
    return str(err.value)


def normal_scores(values) -> np.ndarray:
    return norm.ppf(rankdata(values) / (len(values) + 1))


@pytest.fixture(scope="module")
def real() -> pd.DataFrame:
    """Known structure: x, y normal with rho 0.8; group is 'a' exactly when a third coordinate (rho 0.5 with x)
    exceeds 0.3; age is a whole number driven by that coordinate; y and group have missing values."""
    rng = np.random.default_rng(0)
    z = rng.multivariate_normal([0, 0, 0], [[1, 0.8, 0.5], [0.8, 1, 0.4], [0.5, 0.4, 1]], N)
    y = 50 + 10 * z[:, 1]
    y[rng.random(N) < 0.2] = np.nan
    group = np.where(z[:, 2] > 0.3, "a", "b").astype(object)
    group[rng.random(N) < 0.1] = None
    return pd.DataFrame(
        {
            "person_id": [f"p{i}" for i in range(N)],
            "x": z[:, 0],
            "y": y,
            "group": group,
            "age": np.round(40 + 12 * z[:, 2]),
        }
    )


@pytest.fixture(scope="module")
def model(real) -> AttributeModel:
    return AttributeModel.fit(real)


@pytest.fixture(scope="module")
def fake(model) -> pd.DataFrame:
    return model.sample(N, seed=1)


@pytest.fixture(scope="module")
def lifesnaps() -> pd.DataFrame:
    return pd.read_csv(Path(get_dataset("lifesnaps").path).parent / "persons.csv")


def test_types_and_order(model, fake):
    assert model.columns == ["x", "y", "group", "age"] == list(fake.columns)
    assert [a.kind for a in model.attributes] == ["numeric", "numeric", "categorical", "numeric"]
    assert model.attributes[3].integer and (fake["age"] == fake["age"].round()).all()
    assert fake["x"].dtype == float and fake["group"].dtype in (object, "str")  # "str": pandas 3
    assert len(model.notes) == 5 and model.notes[1].startswith("y: numeric, from")


def test_marginals_and_missing_rates_are_reproduced(real, fake):
    shares = fake["group"].value_counts(normalize=True, dropna=False)
    expected = real["group"].value_counts(normalize=True, dropna=False)
    assert np.allclose(shares.sort_index(), expected.sort_index(), atol=0.015)
    for column in ("x", "y", "age"):
        q = [0.05, 0.25, 0.5, 0.75, 0.95]
        spread = real[column].std()
        assert np.allclose(fake[column].quantile(q), real[column].quantile(q), atol=0.05 * spread)
        assert fake[column].dropna().between(real[column].min(), real[column].max()).all()
    assert abs(fake["y"].isna().mean() - 0.2) < 0.015 and fake["x"].notna().all()


def test_numeric_values_are_interpolated_not_copied(model, real, fake):
    assert len(model.attributes[0].knots_x) == 512  # thinned: the model does not grow with the table
    assert not np.isin(fake["x"].to_numpy(), real["x"].to_numpy()).any()


def test_a_strong_correlation_is_reproduced(real, fake):
    both = fake.dropna(subset=["x", "y"])
    rho = np.corrcoef(normal_scores(both["x"]), normal_scores(both["y"]))[0, 1]
    assert abs(rho - 0.8) < 0.05


def test_a_category_keeps_its_association_with_a_number(real, fake):
    """The latent correlation of a category is recovered exactly, not attenuated by its coarse scores."""
    for frame in (real, fake):
        known = frame.dropna(subset=["group"])
        frame.attrs["r"] = np.corrcoef(known["group"] == "a", known["age"])[0, 1]
    assert abs(fake.attrs["r"] - real.attrs["r"]) < 0.03


def test_missingness_has_its_own_coordinate(fake):
    """y's missing values are not low values in disguise: they occur whatever x is (as in the real table)."""
    missing = fake["y"].isna()
    assert abs(fake["x"][missing].mean() - fake["x"][~missing].mean()) < 0.06


def test_conditional_sampling_is_exact_and_shifts_the_others(model):
    where = Conditions(["x >= 1", "group == 'a'", "age < 50", "age != 45", "y > 40"])
    fake = model.sample(5000, seed=2, where=where)
    assert (fake["x"] >= 1).all() and (fake["group"] == "a").all()
    assert (fake["age"] < 50).all() and (fake["age"] != 45).all() and (fake["y"] > 40).all()
    plain = model.sample(5000, seed=2, where=Conditions(["x >= 1"]))
    # y given x >= 1: 50 + 10 * 0.8 * E[Z | Z >= 1] = 62.2 for a bivariate normal with rho 0.8
    assert abs(plain["y"].mean() - (50 + 8 * norm.pdf(1) / norm.sf(1))) < 0.6
    assert plain["y"].isna().mean() == pytest.approx(0.2, abs=0.03)


def test_equality_and_the_ends_of_the_range(model, real):
    low, high = float(real["x"].min()), float(real["x"].max())
    fake = model.sample(300, seed=3, where=Conditions([f"x == {low!r}", "age == 70"]))
    assert (fake["x"] == low).all() and (fake["age"] == 70).all()
    fake = model.sample(300, seed=3, where=Conditions([f"x == {high!r}", "y == 50"]))
    assert (fake["x"] == high).all() and (fake["y"] == 50).all()


def test_seeded_sampling_is_deterministic(model):
    where = Conditions(["group in ['a']", "y < 45"])
    first, again = (model.sample(500, seed=7, where=where) for _ in range(2))
    pd.testing.assert_frame_equal(first, again)
    assert not model.sample(500, seed=8, where=where).equals(first)


def test_json_round_trip_samples_identically(model):
    loaded = AttributeModel.from_dict(json.loads(json.dumps(model.to_dict(), allow_nan=False)))
    where = Conditions(["age >= 45"])
    pd.testing.assert_frame_equal(loaded.sample(300, seed=4, where=where), model.sample(300, seed=4, where=where))
    assert loaded.notes == model.notes and loaded.code_sizes == model.code_sizes


def test_from_dict_rejects_what_is_not_a_model(model):
    one_line_error(lambda: AttributeModel.from_dict({"format": "pickle"}), r"attribute model: not a saved model")
    broken = model.to_dict() | {"correlation": [[1.0]]}
    one_line_error(lambda: AttributeModel.from_dict(broken), r"the correlation is \(1, 1\), expected 6 square")


def test_encode_codes_real_and_sampled_persons(model, real, fake):
    for frame in (real, fake):
        codes = model.encode(frame)
        assert codes.shape == (len(frame), 4) and codes.dtype == np.int64
        assert ((codes >= -1) & (codes < np.array(model.code_sizes))).all()
        assert ((codes == -1) == frame[model.columns].isna().to_numpy()).all()
    assert model.code_sizes[:3] == [8, 8, 2]
    shares = np.bincount(model.encode(real)[:, 0]) / len(real)
    assert np.allclose(shares, 1 / 8, atol=0.01)  # quantile bins fixed at fit time


def test_encode_errors_name_row_and_value(model, real):
    bad = real.head(5).assign(group=["a", "b", "c", "a", "a"])
    one_line_error(
        lambda: model.encode(bad, source="persons.csv"), r"persons.csv: line 4: column 'group': 'c' is not a category"
    )
    bad = real.head(3).astype({"x": object}).assign(x=["1", "two", "3"])
    one_line_error(lambda: model.encode(bad), r"row 2: column 'x': 'two' is not a number")
    one_line_error(lambda: model.encode(real.drop(columns="age")), r"missing column 'age'")


def test_seed_table_rows_meet_their_own_cells(model):
    seed_table = pd.DataFrame(
        {
            "person_id": ["s1", "s2", "s3", "s4"],
            "group": ["a", None, "b", ""],
            "age": [30, 50, np.nan, np.nan],
            "y": ["", "", "55.5", ""],
        }
    )
    fake = model.sample_rows(seed_table, seed=0)
    assert list(fake.columns) == ["person_id", *model.columns] and list(fake["person_id"]) == ["s1", "s2", "s3", "s4"]
    assert list(fake["group"][[0, 2]]) == ["a", "b"] and list(fake["age"][:2]) == [30, 50] and fake["y"][2] == 55.5
    many = model.sample_rows(pd.DataFrame({"age": [25.0] * 2000}), seed=1)
    assert (many["age"] == 25).all() and (many["group"] == "b").mean() > 0.8  # young persons are mostly 'b'
    pd.testing.assert_frame_equal(model.sample_rows(seed_table, seed=0), fake)


@pytest.mark.parametrize(
    "seed_table, problem",
    [
        (pd.DataFrame({"sex": ["f"]}), r"the seed table: unknown column 'sex' \(known: x, y, group, age\)"),
        (
            pd.DataFrame({"group": ["a", "c"]}),
            r"the seed table: row 2: column 'group': 'c' is not a category the model has seen \(seen: 'b', 'a'\)",
        ),
        (
            pd.DataFrame({"age": [30, 200]}),
            r"row 2: column 'age': 200 is not among the values the model generates \(whole numbers from",
        ),
        (pd.DataFrame({"age": [30.5]}), r"row 1: column 'age': 30.5 is not among the values"),
        (pd.DataFrame({"y": ["1", "abc"]}), r"row 2: column 'y': 'abc' is not a number"),
    ],
)
def test_seed_table_errors(model, seed_table, problem):
    one_line_error(lambda: model.sample_rows(seed_table, seed=0), problem)


def test_quotas_give_exact_counts(model):
    fake = model.sample(1001, seed=5, quotas=[parse_quota("group=a:0.3")], where=Conditions(["x > 0"]))
    assert (fake["group"] == "a").sum() == 300 and (fake["x"] > 0).all()
    assert fake["group"].isna().sum() > 0  # the rest takes any other value, missing included
    assert fake["group"].head(50).nunique(dropna=False) > 1  # groups are shuffled, not in blocks
    both = model.sample(1000, seed=5, quotas=[parse_quota("group=a:0.5"), parse_quota("group=b:0.5")])
    assert both["group"].value_counts().to_dict() == {"a": 500, "b": 500}
    rest = model.sample(1000, seed=5, quotas=[parse_quota("group=a:0.5"), parse_quota("group=b:0.4")])
    assert rest["group"].value_counts(dropna=False).to_dict() == {"a": 500, "b": 400, np.nan: 100}


def test_sample_argument_errors(model):
    one_line_error(lambda: model.sample(-1, seed=0), r"the number of persons must be a whole number >= 0")
    one_line_error(lambda: model.sample(10, seed=-3), r"the seed must be a whole number >= 0")
    assert model.sample(0, seed=0).columns.tolist() == model.columns


def test_typing_rules():
    n = 200
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        {
            "person_id": range(n),
            "weight": rng.normal(70, 10, n).round(1),
            "children": rng.integers(0, 4, n),  # numbers, 4 distinct: categorical
            "score": rng.integers(0, 30, n).astype(str),  # numbers written as text, 30 distinct: numeric
            "country": ["NL"] * n,  # one value: dropped
            "note": [None] * n,  # all missing: dropped
            "email": [f"u{i}@x" for i in range(n)],  # one value per person: dropped
            "consent": ["yes"] * (n - 20) + [None] * 20,  # one value, but missing sometimes: kept
        }
    )
    model = AttributeModel.fit(table)
    kinds = {a.name: (a.kind, a.integer) for a in model.attributes}
    assert kinds == {
        "weight": ("numeric", False),
        "children": ("categorical", False),
        "score": ("numeric", True),
        "consent": ("categorical", False),
    }
    assert model.attributes[1].categories == ["0", "1", "2", "3"]
    assert set(model.dropped) == {"country", "note", "email"}
    assert any(
        "email: dropped (200 distinct values among 200 persons look like an identifier" in n for n in model.notes
    )
    fake = model.sample(4000, seed=0, where=Conditions(["children >= 2"]))
    assert set(fake["children"]) == {"2", "3"} and abs(fake["consent"].isna().mean() - 0.1) < 0.03


def test_a_small_cohorts_name_column_is_dropped_not_copied_into_synthetic_persons():
    """Eight persons' names are too few to look like an identifier by their number, but a category
    held by one person each would hand every synthetic person a real name."""
    table = pd.DataFrame(
        {
            "person_id": [f"p{i}" for i in range(8)],
            "name": [f"u{i}" for i in range(8)],
            "gender": ["female", "male"] * 4,
        }
    )
    model = AttributeModel.fit(table)
    assert [a.name for a in model.attributes] == ["gender"] and list(model.dropped) == ["name"]
    assert any("name: dropped (each of the 8 persons has a value of their own" in note for note in model.notes)
    pairs = AttributeModel.fit(table.head(2))  # two persons: too few to call anything an identifier
    assert [a.name for a in pairs.attributes] == ["name", "gender"]


def test_a_small_cohorts_own_numbers_are_numeric_not_categories_copied_as_they_are():
    bmi = [21.3, 24.8, 27.1, 19.6, 30.2, 22.9]
    model = AttributeModel.fit(pd.DataFrame({"person_id": [f"p{i}" for i in range(6)], "bmi": bmi}))
    assert model.attributes[0].kind == "numeric"
    drawn = model.sample(500, seed=0)["bmi"].astype(float)
    assert drawn.between(min(bmi), max(bmi)).all() and drawn.isin(bmi).mean() <= 0.01
    shared = AttributeModel.fit(pd.DataFrame({"person_id": ["a", "b", "c", "d"], "score": [1, 2, 2, 5]}))
    assert shared.attributes[0].kind == "categorical"  # a score several persons share stays a category


def test_lifesnaps_mixed_bmi_is_categorical_ordered_by_number(lifesnaps):
    model = AttributeModel.fit(lifesnaps, source="persons.csv")
    bmi = model.attributes[2]
    assert bmi.kind == "categorical" and bmi.categories[:3] == ["<19", "19.0", "20.0"] and bmi.categories[-1] == ">=30"
    assert bmi.categories.index(">=25") == bmi.categories.index("25.0") + 1
    assert "labels stand for numbers or ranges" in model.notes[2]
    where = Conditions(["gender == 'female'", "age_group == '>=30'", "25 <= bmi < 30"])
    fake = model.sample(1000, seed=0, where=where)
    assert (fake["gender"] == "female").all() and (fake["age_group"] == ">=30").all()
    assert set(fake["bmi"]) <= {"25.0", "26.0", "27.0", "28.0", "29.0"}
    fake = model.sample(20000, seed=0)
    real_share = lifesnaps["gender"].value_counts(normalize=True, dropna=False)
    assert np.allclose(
        fake["gender"].value_counts(normalize=True, dropna=False)[real_share.index], real_share, atol=0.015
    )
    assert model.encode(lifesnaps).shape == (71, 3) and model.code_sizes == [2, 2, 14]


@pytest.mark.parametrize(
    "table, problem",
    [
        (
            pd.DataFrame({"id": [1], "age": [3]}),
            r"persons.csv: missing column 'person_id' \(columns present: 'id', 'age'\)",
        ),
        (pd.DataFrame({"person_id": ["a", "b"]}), r"no attribute column besides 'person_id'"),
        (
            pd.DataFrame({"person_id": ["a", " "], "g": ["x", "y"]}),
            r"persons.csv: line 3: column 'person_id': no person id",
        ),
        (
            pd.DataFrame({"person_id": ["a", "b", "a"], "g": ["x", "y", "x"]}),
            r"line 4: column 'person_id': 'a' appears more than once",
        ),
        (
            pd.DataFrame({"person_id": ["a", "b"], "g": ["x", "x"]}),
            r"no column is left to model \(g: dropped \(one value only \('x'\)\)\)",
        ),
        (pd.DataFrame([["a", 1, 2]], columns=["person_id", "g", "g"]), r"column 'g' appears more than once"),
        *(
            (
                pd.DataFrame(
                    {"person_id": [str(i) for i in range(20)], "age": [str(20 + i) for i in range(19)] + [big]}
                ),
                rf"persons.csv: line 21: column 'age': '{big}' is not a finite number",
            )
            for big in ("inf", "1e400")  # one such cell would make the ages categories
        ),
        *(
            (
                pd.DataFrame(
                    {"person_id": [str(i) for i in range(20)], "age": [str(20 + i) for i in range(18)] + cells}
                ),
                rf"persons.csv: line 20: column 'age': '{cells[0]}' is a number written with a comma; write 20.5",
            )
            for cells in (["20,5", "31,25"], ["1,000", "42"])
        ),
    ],
)
def test_fit_errors(table, problem):
    one_line_error(lambda: AttributeModel.fit(table, source="persons.csv"), problem)


def test_text_with_commas_beside_words_is_a_category_not_a_number():
    persons = pd.DataFrame({"person_id": [str(i) for i in range(8)], "diet": ["1,2", "none", "1,2", "3"] * 2})
    model = AttributeModel.fit(persons, source="persons.csv")
    assert model.attributes[0].kind == "categorical" and "1,2" in model.attributes[0].categories
