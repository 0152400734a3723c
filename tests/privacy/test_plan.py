"""``synthwear privacy-plan``: the noise each budget buys, the nearest measured fidelity, the warnings;
and the command on the tiny recipe, which trains nothing."""

import json
import math

import pytest
import yaml
from click.testing import CliRunner
from cohorts import REPO

from synthwear.cli import cli
from synthwear.errors import SynthwearError
from synthwear.plugins import default_registry
from synthwear.privacy import plan
from synthwear.privacy.accounting import calibrate_noise
from synthwear.privacy.plan import (
    DEFAULT_EPSILONS,
    Budget,
    expected_fidelity,
    load_curve,
    noise_to_signal,
    plan_warnings,
    planned_budgets,
    price_budget,
)
from synthwear.recipe import PrivacySection, load_recipe
from synthwear.steps import load_data, split_cohort

TINY = REPO / "recipes" / "tiny.yaml"
FAST = PrivacySection(target_epsilon=3, accountant="rdp", sample_rate=1, steps=10)  # closed-form RDP: milliseconds


def cell(arm, persons, epsilon, discriminative, cohort="real-35", simulated=False):
    return {
        "cohort": cohort,
        "simulated": simulated,
        "persons": persons,
        "epsilon": epsilon,
        "arm": arm,
        "discriminative": {"mean": discriminative, "sd": 0.01},
        "tstr": {"mean": 1.0, "sd": 0.1},
        "folds": 5,
    }


CURVE = {
    "command": "python benchmarks/privacy_utility.py --test",
    "commit": "abc1234",
    "rows": [
        cell("base", 35, None, 0.21),
        cell("fine-tune heads", 35, 1.0, 0.30),
        cell("fine-tune heads", 35, 3.0, 0.25),
        cell("fine-tune heads", 35, 8.0, 0.15),
        cell("fine-tune heads", 100, 3.0, 0.12, cohort="real-100"),
        cell("fine-tune heads", 1000, 3.0, 0.05, cohort="sim-1000", simulated=True),
        cell("non-private", 35, None, 0.03),
    ],
}


@pytest.fixture
def no_shipped_curve(monkeypatch, tmp_path):
    """The shipped curve's place left empty, whether or not the benchmark has written one yet."""
    monkeypatch.setattr(plan, "shipped_curve", lambda: tmp_path / "absent" / "curve.json")


@pytest.fixture
def curve_file(tmp_path):
    path = tmp_path / "curve.json"
    path.write_text(json.dumps(CURVE))
    return path


def test_noise_to_signal_is_sigma_over_the_expected_persons_per_step():
    assert noise_to_signal(6.0, 0.25, 48) == 0.5  # 6 / (0.25 x 48 = 12)
    assert noise_to_signal(15.0, 0.5, 20) == 1.5  # 15 / 10: the noise outweighs the ten clipped gradients


def test_a_budget_is_priced_with_the_runs_delta_and_calibration():
    budget = price_budget(FAST, 40, 2.0)
    assert budget.delta == 1 / 400  # 1 / (10 n)
    assert budget.noise_multiplier == calibrate_noise(FAST.model_copy(update={"target_epsilon": 2.0}), 1 / 400)
    assert budget.noise_multiplier > price_budget(FAST, 40, 3.0).noise_multiplier  # priced at 2, not the recipe's 3
    assert budget.persons_per_step == 40 and budget.noise_to_signal == pytest.approx(budget.noise_multiplier / 40)
    assert price_budget(FAST.model_copy(update={"target_delta": 1e-5}), 40, 2.0).delta == 1e-5


def test_an_unreachable_budget_is_a_note_not_an_error():
    budget = price_budget(FAST.model_copy(update={"steps": 1}), 40, 1e-12, CURVE)
    assert budget.noise_multiplier is None and budget.noise_to_signal is None and budget.fidelity == []
    assert "cannot be reached" in budget.note and "\n" not in budget.note


def test_an_infinite_epsilon_is_no_dp_and_null_in_json():
    budget = price_budget(FAST, 40, math.inf, CURVE)
    assert budget.noise_multiplier == 0.0 and budget.delta is None
    assert [c["arm"] for c in budget.fidelity] == ["base", "non-private"]
    assert json.loads(json.dumps(budget.to_dict()))["epsilon"] is None


def test_budgets_default_to_the_recipes_target_else_one_three_eight():
    section, epsilons = planned_budgets(None, ())
    assert (
        epsilons == list(DEFAULT_EPSILONS) == [1.0, 3.0, 8.0]
        and section.steps == PrivacySection.model_fields["steps"].default
    )
    assert planned_budgets(FAST, ()) == (FAST, [3])
    assert planned_budgets(FAST, (0.5, 2.0)) == (FAST, [0.5, 2.0])


def test_expected_fidelity_takes_the_nearest_cohort_on_a_log_scale_then_the_nearest_epsilon():
    heads = {n: next(c for c in expected_fidelity(CURVE, n, 3.0) if c["arm"] == "fine-tune heads") for n in (49, 400)}
    assert heads[49]["cohort"] == "real-35"  # log(49/35) = 0.34 < log(100/49) = 0.71
    assert heads[400]["cohort"] == "sim-1000"  # log(1000/400) = 0.92 < log(400/100) = 1.39 (linearly, 100 is nearer)
    assert [c["epsilon"] for c in expected_fidelity(CURVE, 35, 6.0)] == [None, 8.0]
    assert [c["epsilon"] for c in expected_fidelity(CURVE, 35, 2.0)] == [None, 1.0]  # a tie goes to the smaller ε


def test_base_matches_every_budget_and_non_private_only_infinity():
    assert [c["arm"] for c in expected_fidelity(CURVE, 35, 3.0)] == ["base", "fine-tune heads"]
    assert [c["arm"] for c in expected_fidelity(CURVE, 35, math.inf)] == ["base", "non-private"]


def test_a_real_cohort_is_preferred_to_a_simulated_one_of_the_same_size():
    rows = [cell("fine-tune all", 50, 3.0, 0.1, cohort="sim", simulated=True), cell("fine-tune all", 50, 3.0, 0.2)]
    assert expected_fidelity({"rows": rows}, 50, 3.0)[0]["simulated"] is False


def test_warnings_name_drowned_steps_an_unbeaten_base_and_few_persons():
    drowned = Budget(1.0, 1e-3, 15.0, 10.0, 1.5)
    fine = Budget(8.0, 1e-3, 5.0, 10.0, 0.5)
    [noise, few] = plan_warnings([drowned, fine], 40)
    assert noise.startswith("at ε=1, each step's noise outweighs the 40 persons' clipped gradients") and "1.50" in noise
    assert "`base:`" in noise and "membership-attack confidence intervals" in few
    [tuned_noise, _] = plan_warnings([drowned, fine], 40, from_base=True)  # a base already: fewer trained values
    assert "`base.train: biases`" in tuned_noise and "`base:`" not in tuned_noise
    assert plan_warnings([fine], 100) == []
    fine.fidelity = [cell("base", 35, None, 0.21), cell("fine-tune heads", 35, 8.0, 0.25)]
    [unbeaten] = plan_warnings([fine], 100)
    assert unbeaten.startswith("at ε=8, no fine-tune arm beats the base model") and "0.210" in unbeaten
    fine.fidelity[1]["discriminative"]["mean"] = 0.15
    assert plan_warnings([fine], 100) == []


def test_no_shipped_curve_is_none(no_shipped_curve):
    assert load_curve() is None


def test_a_curve_file_is_read_and_a_broken_one_is_one_line(tmp_path, curve_file):
    curve = load_curve(curve_file)
    assert curve["rows"] == CURVE["rows"] and curve["source"] == str(curve_file)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(SynthwearError, match="not a privacy-utility curve"):
        load_curve(tmp_path / "bad.json")
    (tmp_path / "short.json").write_text(json.dumps({"rows": [{"arm": "base"}]}))
    with pytest.raises(SynthwearError, match="a curve row lacks cohort, simulated, persons, epsilon, discriminative"):
        load_curve(tmp_path / "short.json")
    for content, found in (({"lines": []}, "an object with keys 'lines'"), ([1, 2], "list")):
        (tmp_path / "other.json").write_text(json.dumps(content))
        with pytest.raises(SynthwearError) as raised:
            load_curve(tmp_path / "other.json")
        expected = f"not a privacy-utility curve (expected an object with 'rows', found {found})"
        assert str(raised.value) == f"{tmp_path / 'other.json'}: {expected}"


@pytest.mark.parametrize(
    "rows, expected",
    [
        ([1, 2], r"not a privacy-utility curve \(its rows must be a list of objects\)"),
        ({"a": 1}, r"its rows must be a list of objects"),
        ([cell("scratch", 0, 1.0, 0.2)], r"curve rows: key '0.persons': Input should be greater than 0"),
        ([cell("scratch", 35, "one", 0.2)], r"curve rows: key '0.epsilon': Input should be a valid number"),
        ([{**cell("scratch", 35, 1.0, 0.2), "discriminative": 0.2}], r"curve rows: key '0.discriminative'"),
    ],
)
def test_a_curve_edited_into_the_wrong_shape_is_one_line(tmp_path, rows, expected):
    """Checked when read, not met as a traceback half-way through the plan."""
    (tmp_path / "curve.json").write_text(json.dumps({"rows": rows}))
    with pytest.raises(SynthwearError, match=expected):
        load_curve(tmp_path / "curve.json")
    (tmp_path / "curve.json").write_bytes(b"\xff\xfe not text")
    with pytest.raises(SynthwearError, match="not a privacy-utility curve .*'utf-8' codec"):
        load_curve(tmp_path / "curve.json")


def test_cli_an_epsilon_that_is_not_a_number_is_one_line_before_the_data_is_read(no_shipped_curve, monkeypatch):
    monkeypatch.setattr(plan, "split_as_a_run_would", lambda *a: pytest.fail("read the data first"))
    result = CliRunner().invoke(cli, ["privacy-plan", str(TINY), "--epsilon", "nan"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: epsilon nan: a privacy budget is a number > 0 (inf: no differential privacy)"
    ]


def test_cli_prices_one_three_eight_for_the_tiny_recipes_training_persons(no_shipped_curve):
    result = CliRunner().invoke(cli, ["privacy-plan", str(TINY), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    recipe = load_recipe(TINY)
    split, _ = split_cohort(recipe, load_data(recipe, default_registry()), lambda note: None)
    n = len(split.train)
    assert out["train_persons"] == n and out["holdout_persons"] == len(split.holdout) and not out["from_recipe"]
    budgets = out["budgets"]
    assert [b["epsilon"] for b in budgets] == [1.0, 3.0, 8.0] and out["curve"] is None
    assert budgets[0]["noise_multiplier"] > budgets[1]["noise_multiplier"] > budgets[2]["noise_multiplier"] > 0
    for budget in budgets:
        assert budget["delta"] == 1 / (10 * n) and budget["persons_per_step"] == 0.25 * n
        assert budget["noise_to_signal"] == pytest.approx(budget["noise_multiplier"] / (0.25 * n))
    drowned = [b["epsilon"] for b in budgets if b["noise_to_signal"] > 1]
    assert drowned and len([w for w in out["warnings"] if "noise outweighs" in w]) == len(drowned)
    assert any("membership-attack" in w for w in out["warnings"])  # LifeSnaps has fewer than 100 persons


def test_cli_tables_show_the_cells_the_estimate_rests_on(curve_file):
    wide = {"COLUMNS": "160"}  # so that no cohort name is folded across lines
    result = CliRunner().invoke(
        cli, ["privacy-plan", str(TINY), "--epsilon", "3", "--curve", str(curve_file)], env=wide
    )
    assert result.exit_code == 0, result.output
    assert "real-35" in result.stdout and "sim-1000" not in result.stdout and "abc1234" in result.stdout
    assert "no fine-tune arm beats the base model" in result.stderr  # 0.25 at ε = 3 against the base's 0.21


def test_cli_prices_no_dp_alone_and_beside_a_budget(curve_file):
    """inf alone once built the section from it (a traceback); two budgets' tables once shared columns."""
    alone = CliRunner().invoke(cli, ["privacy-plan", str(TINY), "--epsilon", "inf", "--curve", str(curve_file)])
    assert alone.exit_code == 0, alone.output
    assert "no DP: no formal guarantee" in alone.stdout
    both = CliRunner().invoke(
        cli, ["privacy-plan", str(TINY), "--epsilon", "3", "--epsilon", "inf", "--curve", str(curve_file)]
    )
    assert both.exit_code == 0, both.output
    assert both.stdout.count("measured nearest to") == 2


def test_cli_without_a_shipped_curve_says_so_in_one_line(no_shipped_curve):
    result = CliRunner().invoke(cli, ["privacy-plan", str(TINY), "--epsilon", "1"])
    assert result.exit_code == 0, result.output
    assert "no measured privacy-utility curve is shipped" in result.stdout and "Traceback" not in result.output


def test_cli_takes_the_recipes_privacy_section(tmp_path, no_shipped_curve):
    raw = yaml.safe_load(TINY.read_text())
    raw["privacy"] = FAST.model_dump(exclude_none=True)
    (tmp_path / "private.yaml").write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(cli, ["privacy-plan", str(tmp_path / "private.yaml"), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["from_recipe"] and out["settings"]["accountant"] == "rdp" and out["settings"]["steps"] == 10
    assert [b["epsilon"] for b in out["budgets"]] == [3.0]


def test_cli_a_broken_curve_is_one_line(tmp_path):
    (tmp_path / "bad.json").write_text("[]")
    result = CliRunner().invoke(cli, ["privacy-plan", str(TINY), "--curve", str(tmp_path / "bad.json")])
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"Error: {tmp_path / 'bad.json'}: not a privacy-utility curve")
