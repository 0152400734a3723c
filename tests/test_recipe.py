from pathlib import Path

import pytest
import yaml

from synthwear.errors import SynthwearError
from synthwear.recipe import load_recipe


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(text)
    return path


def test_shipped_recipes_are_valid():
    for path in (Path(__file__).parents[1] / "recipes").glob("*.yaml"):
        assert load_recipe(path).name


def test_misspelled_key_names_key_and_file(tmp_path):
    raw = yaml.safe_load((Path(__file__).parents[1] / "recipes" / "tiny.yaml").read_text())
    raw["training"]["epoch"] = raw["training"].pop("epochs")
    path = write(tmp_path, yaml.safe_dump(raw))
    with pytest.raises(SynthwearError) as err:
        load_recipe(path)
    message = str(err.value)
    assert str(path) in message and "'training.epoch'" in message and "unknown key" in message
    assert "\n" not in message


def test_wrong_type_is_rejected(tmp_path):
    path = write(tmp_path, "name: x\ndata: {dataset: lifesnaps}\nchannels: {steps: {range: [0, 1]}}\ntraining: {epochs: many}\n")
    with pytest.raises(SynthwearError, match=r"'training.epochs'"):
        load_recipe(path)


def test_range_must_be_ordered(tmp_path):
    path = write(tmp_path, "name: x\ndata: {dataset: lifesnaps}\nchannels: {steps: {range: [10, 0]}}\n")
    with pytest.raises(SynthwearError, match=r"channels.steps.range"):
        load_recipe(path)


def test_exactly_one_data_source(tmp_path):
    path = write(tmp_path, "name: x\ndata: {dataset: lifesnaps, path: a.csv}\nchannels: {steps: {range: [0, 1]}}\n")
    with pytest.raises(SynthwearError, match="exactly one"):
        load_recipe(path)


def test_invalid_yaml_names_line(tmp_path):
    path = write(tmp_path, "name: x\nchannels: [unclosed\n")
    with pytest.raises(SynthwearError, match=r"line \d+: not valid YAML"):
        load_recipe(path)


def test_relative_paths_resolve_against_recipe_folder(tmp_path):
    path = write(tmp_path, "name: x\ndata: {path: data/daily.csv}\nchannels: {steps: {range: [0, 1]}}\n")
    assert load_recipe(path).resolve_path("data/daily.csv") == (tmp_path / "data" / "daily.csv").resolve()
