import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from synthwear.cli import cli
from synthwear.hookspecs import hookimpl
from synthwear.plugins import Registry, default_registry, load_plugin_manager
from synthwear.report.page import base_line, read_json, render


def test_report_is_self_contained_with_plotly_embedded_once(tiny_run):
    html = (tiny_run / "report.html").read_text()
    assert html.count("Plotly.newPlot") >= 4  # traces, marginals, temporal (2), discriminator ROC
    assert html.count("* plotly.js v") == 1  # the library's banner: embedded once
    assert "<script src" not in html  # nothing fetched: works offline


def test_report_carries_verdicts_provenance_and_holdout_note(tiny_run):
    html = (tiny_run / "report.html").read_text()
    run = json.loads((tiny_run / "run.json").read_text())
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    words = [row["verdict"] for results in metrics.values() for row in results.get("verdict", []) if row["verdict"]]
    assert len(words) >= 10
    assert html.count('<span class="good">') + html.count('<span class="fair">') + html.count(
        '<span class="poor">'
    ) == len(words)
    assert html.index("id='verdict'") < html.index("id='ev-traces'")
    for fact in (run["data"]["citation"], run["data"]["licence"], run["versions"]["torch"]):
        assert fact.replace('"', "&quot;") in html
    assert "holdout persons" in html


class Unknown:
    """An evaluator from a plugin the report knows nothing about."""

    def evaluate(self, context):
        return {}

    def report_section(self, results, run):
        return f"<h2>Membership check</h2><p>auc {results['auc']}</p>"


class NoSection:
    def evaluate(self, context):
        return {}


class Plugin:
    @hookimpl
    def register_evaluators(self, register):
        register("third_party_check", Unknown)
        register("plain", NoSection)


def test_unknown_evaluators_bring_their_section_or_are_shown_as_data(tiny_run, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(tiny_run, folder)
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics |= {
        "third_party_check": {
            "auc": 0.51,
            "verdict": [
                {
                    "metric": "attack AUC",
                    "channel": None,
                    "synthetic": 0.51,
                    "ceiling": 0.5,
                    "floor": 0.9,
                    "higher_is_better": False,
                    "resolution": 0.05,
                    "verdict": "good",
                }
            ],
        },
        "plain": {"value": 7},
        "gone": {"value": 8},
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))
    run, synthetic = read_json(folder / "run.json"), pd.read_csv(folder / "synthetic.csv")
    html = render(run, metrics, synthetic, Registry(load_plugin_manager([Plugin()])))
    assert "<h2>Membership check</h2><p>auc 0.51</p>" in html
    assert "third_party_check: attack AUC" in html  # its verdict row joins the table
    assert "&quot;value&quot;: 7" in html and "&quot;value&quot;: 8" in html
    assert "no evaluator named &#x27;gone&#x27; is installed" in html
    assert html.index("Membership check") < html.index("id='synthetic'")


def test_report_command_rebuilds_the_page_without_retraining(tiny_run, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(tiny_run, folder)
    (folder / "report.html").unlink()
    shutil.rmtree(folder / "model")
    result = CliRunner().invoke(cli, ["report", str(folder)])
    assert result.exit_code == 0, result.output
    assert (folder / "report.html").read_text() == (tiny_run / "report.html").read_text()


def test_not_a_run_folder_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(cli, ["report", str(tmp_path)])
    assert result.exit_code != 0 and "not a finished run folder, run.json is missing" in result.output


def test_damaged_metrics_is_a_one_line_error_naming_the_file(tiny_run, tmp_path):
    import shutil

    copy = shutil.copytree(tiny_run, tmp_path / "copy")
    (copy / "metrics.json").write_text('{"forecast": ')
    result = CliRunner().invoke(cli, ["report", str(copy)])
    assert result.exit_code == 1 and f"{copy / 'metrics.json'}: cannot be read as JSON" in result.output
    assert "Traceback" not in result.output


def replace_with_folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


def older_run_with(run: Path, text: str) -> None:
    """A run from before run.json kept the cohort files' sha256, whose synthetic.csv now holds ``text``."""
    record = json.loads((run / "run.json").read_text())
    del record["files"]
    (run / "run.json").write_text(json.dumps(record))
    (run / "synthetic.csv").write_text(text)


@pytest.mark.parametrize(
    "damage, expected",
    [
        (lambda run: (run / "synthetic.csv").unlink(), r"run: not a finished run folder, synthetic.csv is missing"),
        (lambda run: (run / "synthetic.csv").write_text(""), r"synthetic.csv: not the file this run wrote"),
        (lambda run: older_run_with(run, ""), r"synthetic.csv: cannot be read \(No columns"),
        (lambda run: older_run_with(run, "a,b\n1,2\n"), r"synthetic.csv: no column 'person_id'"),
        (
            lambda run: (run / "run.json").write_text('{"recipe": {"name": "x"}}'),
            r"run.json: not what a synthwear run writes \(missing 'channels'\)",
        ),
        (lambda run: replace_with_folder(run / "report.html"), r"report.html: cannot be written \(Is a directory\)"),
    ],
)
def test_a_damaged_run_folder_is_one_line_naming_the_file(tiny_run, tmp_path, damage, expected):
    copy = shutil.copytree(tiny_run, tmp_path / "run")
    damage(copy)
    result = CliRunner().invoke(cli, ["report", str(copy)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    [line] = result.output.strip().splitlines()
    assert re.search(expected, line), line


def test_the_guarantee_is_on_the_page_whenever_dp_trained_the_model(tiny_run):
    run, metrics = read_json(tiny_run / "run.json"), read_json(tiny_run / "metrics.json")
    assert "membership" not in metrics  # the tiny recipe leaves the privacy evaluator out
    synthetic = pd.read_csv(tiny_run / "synthetic.csv")
    plain = render(run, metrics, synthetic, default_registry())
    assert "none: trained without differential privacy" in plain
    run["privacy"] = {"epsilon": 2.9876, "delta": 1e-5, "accountant": "prv", "target_epsilon": 3.0}
    private = render(run, metrics, synthetic, default_registry())
    line = "(ε = 2.99, δ = 1.0e-05) per person, person-level DP-SGD (prv accountant, target ε 3)"
    assert private.count(line) == 2  # under the title, and in the training section


def test_the_training_table_says_which_base_channels_are_generated_but_not_written():
    base = {"base": "lifesnaps", "train": "biases", "trained_values": 10, "total_values": 100, "new": []}
    assert base_line(base | {"latent": ["resting_hr"]}, 2).endswith(
        "generated as the base does, not written: resting_hr"
    )
    assert "not written" not in base_line(base, 2)
