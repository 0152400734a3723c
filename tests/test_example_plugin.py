"""The third-party path end to end: plugins/synthwear-gru is its own installed package."""

import importlib.metadata
import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from synthwear.cli import cli


def test_example_plugin_is_installed_through_its_entry_point():
    entry_points = importlib.metadata.entry_points(group="synthwear")
    assert any(ep.name == "gru" and ep.dist.name == "synthwear-gru" for ep in entry_points), (
        "install it: pip install -e plugins/synthwear-gru"
    )
    rows = {row["name"]: row for row in json.loads(CliRunner().invoke(cli, ["plugins", "--json"]).output)}
    assert rows["gru"]["kind"] == "generator" and rows["gru"]["package"] == "synthwear-gru"


def test_example_plugin_runs_through_synthwear_run(tmp_path):
    raw = yaml.safe_load((Path(__file__).parents[1] / "recipes" / "tiny.yaml").read_text())
    raw["generator"] = {"name": "gru", "hidden": 16}
    raw["data"] = {"dataset": "lifesnaps"}
    (tmp_path / "gru.yaml").write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "gru.yaml"), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "run" / "model" / "model.json").read_text())
    assert saved["generator"] == {"name": "gru", "hidden": 16, "layers": 1}
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["forecast"]["resting_hr"]["model_mae"] > 0
