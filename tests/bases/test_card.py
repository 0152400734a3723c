"""``export-base``: a run folder that is not what a run writes, or a place the base cannot go, is
refused in one line before anything is written."""

import json
from pathlib import Path

import pytest

from synthwear.bases.card import MODEL_FILES, export_base, private_section
from synthwear.errors import SynthwearError


@pytest.fixture
def run_folder(tmp_path) -> Path:
    """The files export-base reads, with a run.json cut down to its recipe's name."""
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    for name in MODEL_FILES:
        (run / "model" / name).write_text("{}")
    (run / "run.json").write_text(json.dumps({"recipe": {"name": "tiny"}}))
    (run / "metrics.json").write_text("{}")
    return run


def remove_weights(run: Path) -> None:
    (run / "model" / "weights.safetensors").unlink()


@pytest.mark.parametrize(
    "damage, out, expected",
    [
        (remove_weights, "base", r"run: not a finished run \(no model/weights.safetensors\)"),
        (lambda run: None, "notes.txt/base", r"notes.txt/base: .*notes.txt is a file, not a folder"),
        (
            lambda run: None,
            "base",
            r"run: run.json or metrics.json is not what a synthwear run writes \(missing 'seed'\)",
        ),
    ],
)
def test_what_would_stop_the_export_half_way_is_refused_first(run_folder, tmp_path, damage, out, expected):
    (tmp_path / "notes.txt").write_text("mine")
    damage(run_folder)
    with pytest.raises(SynthwearError, match=expected):
        export_base(run_folder, tmp_path / out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "run"]


def test_the_card_names_the_channels_generated_from_the_base_without_training():
    base = {"base": "lifesnaps", "train": "biases", "trained_values": 10, "total_values": 100, "new": []}
    run = {"base": base | {"latent": ["resting_hr"]}, "training": {"best_epoch": 3}}
    assert "never written: `resting_hr` (the base's weights" in private_section(run)
    assert "never written" not in private_section({"base": base, "training": {"best_epoch": 3}})
