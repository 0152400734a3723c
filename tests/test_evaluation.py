"""A failing evaluator costs only its own numbers: the model, the synthetic cohort and a report that
names the failure are kept, the command ends non-zero in one line, and `synthwear evaluate` reruns
the evaluators on the same folder without retraining."""

import json
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from cohorts import REPO

from synthwear import hookimpl
from synthwear.cli import cli
from synthwear.errors import NotEstimable
from synthwear.model import SynthesisModel
from synthwear.plugins import Registry, default_registry, load_plugin_manager


@dataclass
class ProbeConfig:
    mode: str = "raise"  # raise | unavailable | work


class Probe:
    """An evaluator plugin that fails, cannot be estimated, or works, as its option says."""

    def __init__(self, config: ProbeConfig = ProbeConfig()):
        self.config = config

    def evaluate(self, context):
        if self.config.mode == "raise":
            raise RuntimeError("probe exploded\non purpose")
        if self.config.mode == "unavailable":
            raise NotEstimable("needs more persons than this cohort has")
        return {"synthetic_windows": len(context.synthetic.values)}


class ProbePlugin:
    @hookimpl
    def register_evaluators(self, register):
        register("probe", Probe)


@pytest.fixture
def with_probe(monkeypatch):
    """The CLI's registry with the probe evaluator installed, as a third-party plugin would be."""
    registry = Registry(load_plugin_manager([ProbePlugin()]))
    for module in ("synthwear.pipeline", "synthwear.report.page"):
        monkeypatch.setattr(f"{module}.default_registry", lambda: registry)
    return registry


def recipe_with_probe(tmp_path, mode: str):
    raw = yaml.safe_load((REPO / "recipes" / "tiny.yaml").read_text())
    raw["evaluation"]["evaluators"] = [{"name": "forecast"}, {"name": "probe", "mode": mode}, {"name": "marginals"}]
    path = tmp_path / "probe.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_failing_evaluator_keeps_the_run_and_names_the_failure(tmp_path, with_probe):
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", str(recipe_with_probe(tmp_path, "raise")), "--out", str(out)])
    assert result.exit_code == 1
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("Error:") and "probe: RuntimeError: probe exploded on purpose" in last
    assert f"synthwear evaluate {out}" in last
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["probe"] == {"evaluator": "probe", "error": "RuntimeError: probe exploded on purpose"}
    assert metrics["forecast"]["resting_hr"]["model_mae"] > 0 and "histograms" in metrics["marginals"]
    assert pd.read_csv(out / "synthetic.csv")["person_id"].nunique() == 10
    SynthesisModel.load(out / "model", with_probe)  # the trained model is kept and loads
    report = (out / "report.html").read_text()
    assert "Could not be computed, because RuntimeError: probe exploded on purpose" in report


def test_evaluate_reruns_only_the_named_evaluator(tmp_path, with_probe, monkeypatch):
    out = tmp_path / "run"
    recipe = recipe_with_probe(tmp_path, "raise")
    assert CliRunner().invoke(cli, ["run", str(recipe), "--out", str(out)]).exit_code == 1
    before = json.loads((out / "metrics.json").read_text())
    run = json.loads((out / "run.json").read_text())
    run["recipe"]["evaluation"]["evaluators"][1]["mode"] = "work"  # the plugin's cause, fixed
    (out / "run.json").write_text(json.dumps(run))
    result = CliRunner().invoke(cli, ["evaluate", str(out), "--only", "probe"])
    assert result.exit_code == 0, result.output
    after = json.loads((out / "metrics.json").read_text())
    assert after["probe"] == {"synthetic_windows": 10}
    assert after["forecast"] == before["forecast"] and after["marginals"] == before["marginals"]
    assert "Could not be computed" not in (out / "report.html").read_text()


def test_an_unestimable_metric_is_a_stated_reason_not_a_failure(tmp_path, with_probe):
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", str(recipe_with_probe(tmp_path, "unavailable")), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "probe could not be computed on this data: needs more persons" in " ".join(result.output.split())
    assert json.loads((out / "metrics.json").read_text())["probe"] == {
        "evaluator": "probe",
        "unavailable": "needs more persons than this cohort has",
    }
    assert "because needs more persons than this cohort has" in (out / "report.html").read_text()


def test_evaluate_reproduces_the_runs_metrics(tmp_path):
    """The evaluation context rebuilt from the folder (data read again, split redone, synthetic.csv
    read back) is the one the run evaluated: every number comes out the same."""
    out = tmp_path / "run"
    assert CliRunner().invoke(cli, ["run", str(REPO / "recipes" / "tiny.yaml"), "--out", str(out)]).exit_code == 0
    before = json.loads((out / "metrics.json").read_text())
    result = CliRunner().invoke(cli, ["evaluate", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "metrics.json").read_text()) == before


def test_evaluator_options_are_refused_before_training(tmp_path):
    raw = yaml.safe_load((REPO / "recipes" / "tiny.yaml").read_text())
    raw["evaluation"]["evaluators"].append({"name": "tstr", "lagz": 3})
    raw["evaluation"]["evaluators"] = raw["evaluation"]["evaluators"][-1:]
    raw["training"]["epochs"] = 10_000  # would take minutes if training started
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(cli, ["run", str(path), "--out", str(tmp_path / "run")])
    assert result.exit_code == 1 and "evaluator 'tstr': unknown option 'lagz'" in result.output
    assert not (tmp_path / "run").exists()


def test_unknown_evaluator_for_evaluate_only(tmp_path):
    out = tmp_path / "run"
    assert CliRunner().invoke(cli, ["run", str(REPO / "recipes" / "tiny.yaml"), "--out", str(out)]).exit_code == 0
    result = CliRunner().invoke(cli, ["evaluate", str(out), "--only", "membership"])
    assert result.exit_code == 1 and "evaluator 'membership' is not in this run's recipe" in result.output


def test_default_registry_is_untouched_by_the_probe():
    assert "probe" not in {e.name for e in default_registry().entries("evaluators")}


@pytest.mark.parametrize("case", ["two holdout windows", "constant channel", "channel missing in holdout"])
def test_default_evaluators_give_a_number_or_a_reason_on_degenerate_data(case):
    """Small and degenerate shapes: every default evaluator ends with results (each null score with
    a stated reason) or a NotEstimable reason, never an exception."""
    import numpy as np
    import torch
    from test_pipeline import unexplained_gaps

    from synthwear.evaluation import build_evaluators, failures, run_evaluators
    from synthwear.interfaces import EvaluationContext, Windows
    from synthwear.recipe import load_recipe
    from synthwear.steps import build_model

    recipe = load_recipe(REPO / "recipes" / "fitbit.yaml")
    registry = default_registry()
    torch.manual_seed(0)
    model = build_model(recipe, registry, torch.device("cpu"))
    rng = np.random.default_rng(0)

    def windows(n: int, prefix: str) -> Windows:
        values = np.stack(
            [rng.normal(60, 3, (n, 21)), rng.normal(420, 40, (n, 21)), rng.normal(8000, 2000, (n, 21))], -1
        )
        return Windows(values, np.array([f"{prefix}{i // 2}" for i in range(n)]))

    train, holdout, synthetic = windows(30, "t"), windows(8, "h"), windows(40, "s")
    if case == "two holdout windows":
        holdout = Windows(holdout.values[:2], holdout.person[:2])
    elif case == "constant channel":
        for w in (train, holdout, synthetic):
            w.values[..., 1] = 420.0
    else:
        holdout.values[..., 0] = np.nan
    context = EvaluationContext(model, list(recipe.channels), train, holdout, synthetic, seed=0)
    metrics = run_evaluators(build_evaluators(recipe, registry), context)
    assert not failures(metrics), failures(metrics)
    assert not unexplained_gaps(metrics), unexplained_gaps(metrics)


class Returns:
    """An evaluator returning a fixed result, whatever the context."""

    def __init__(self, result):
        self.result = result

    def evaluate(self, context):
        return self.result


def test_numpy_results_become_json_numbers_and_anything_else_is_the_evaluators_failure():
    from synthwear.evaluation import run_evaluators

    numpy_result = {
        "n": np.int64(3),
        "auc": np.float32(0.5),
        "curve": np.array([0.0, 1.0]),
        "pair": (1, np.bool_(True)),
    }
    metrics = run_evaluators({"numpy": Returns(numpy_result), "odd": Returns({"model": {"fit": object()}})}, None)
    assert metrics["numpy"] == {"n": 3, "auc": 0.5, "curve": [0.0, 1.0], "pair": [1, True]}
    assert json.loads(json.dumps(metrics["numpy"])) == metrics["numpy"]  # plain JSON types, no strings
    assert type(metrics["numpy"]["n"]) is int and type(metrics["numpy"]["auc"]) is float
    assert metrics["odd"] == {
        "evaluator": "odd",
        "error": "TypeError: odd.model.fit is a object, which metrics.json cannot hold (numbers, text, lists, dicts)",
    }


@pytest.mark.parametrize(
    "evaluator, expected",
    [
        ({"name": "similarity", "primed_days": 0}, "similarity: primed_days must be between 1 and 6 .*got 0"),
        ({"name": "similarity", "primed_days": 50}, "similarity: primed_days must be between 1 and 6 .*got 50"),
        ({"name": "tstr", "lags": 0}, r"tstr: lags must be between 1 and 6 \(the window has 7 days\), got 0"),
        ({"name": "tstr", "lags": 100}, "tstr: lags must be between 1 and 6 .*got 100"),
        ({"name": "tstr", "target": "weight"}, "tstr: target 'weight' is not a channel"),
        ({"name": "temporal", "max_lag": 0}, "temporal: max_lag must be at least 1, got 0"),
        ({"name": "temporal", "max_lag": 6}, r"temporal: max_lag 6 does not fit 7-day windows \(at most 5"),
    ],
)
def test_options_that_cannot_apply_to_the_recipe_are_refused_before_training(tmp_path, evaluator, expected):
    """Found after training and sampling, a lag that does not fit the window cost the whole run."""
    raw = yaml.safe_load((REPO / "recipes" / "tiny.yaml").read_text())
    raw["evaluation"]["evaluators"] = [evaluator]
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "run")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1].startswith(f"Error: {tmp_path / 'r.yaml'}: evaluation: ")
    assert re.search(expected, result.output) and not (tmp_path / "run").exists()
    assert "epoch" not in result.output
