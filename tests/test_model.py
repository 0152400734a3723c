import json

import numpy as np
import pytest
import torch

from synthwear.errors import SynthwearError
from synthwear.model import SynthesisModel
from synthwear.pipeline import build_model
from synthwear.plugins import default_registry
from synthwear.recipe import load_recipe


@pytest.fixture
def model(tiny_recipe) -> SynthesisModel:
    torch.manual_seed(0)
    return build_model(load_recipe(tiny_recipe), default_registry(), torch.device("cpu"))


def test_save_load_round_trip_without_pickle(model, tmp_path):
    model.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["model.json", "weights.safetensors"]
    json.loads((tmp_path / "m" / "model.json").read_text())
    loaded = SynthesisModel.load(tmp_path / "m", default_registry())
    values = np.array([[[60.0, 400.0, 8000.0]] * 7])
    for a, b in zip(model.next_day_probabilities(values), loaded.next_day_probabilities(values)):
        np.testing.assert_allclose(a, b)
    np.testing.assert_array_equal(model.generate(3, 7, seed=1), loaded.generate(3, 7, seed=1))


def test_weights_file_is_not_executed(model, tmp_path):
    model.save(tmp_path / "m")
    (tmp_path / "m" / "weights.safetensors").write_bytes(b"\x80\x04cos\nsystem\n")  # a pickle payload
    with pytest.raises(Exception) as err:
        SynthesisModel.load(tmp_path / "m", default_registry())
    assert "system" not in str(type(err.value))


def test_not_a_model_folder(tmp_path):
    with pytest.raises(SynthwearError, match="no model.json"):
        SynthesisModel.load(tmp_path, default_registry())


def test_generate_shapes_ranges_and_rounding(model):
    values = model.generate(50, 30, seed=0)  # longer than the 7-day context: the window slides
    assert values.shape == (50, 30, 3) and not np.isnan(values).any()
    for c, (low, high) in enumerate(model.ranges):
        assert values[..., c].min() >= low and values[..., c].max() <= high
    np.testing.assert_array_equal(values[..., 2], np.round(values[..., 2]))


def test_generation_is_seeded_and_priming_keeps_the_given_days(model):
    np.testing.assert_array_equal(model.generate(5, 7, seed=3), model.generate(5, 7, seed=3))
    assert not np.array_equal(model.generate(5, 7, seed=3), model.generate(5, 7, seed=4))
    prime = np.full((5, 3, 3), np.nan)
    prime[:, :, 0] = 61.0
    out = model.generate(5, 7, prime=prime, seed=0)
    np.testing.assert_array_equal(out[:, :3], prime)
    assert not np.isnan(out[:, 3:]).any()


def test_temperature_zero_picks_the_same_bins_whatever_the_seed(model):
    a, b = (model.tokenize(model.generate(4, 7, temperature=0, seed=s))[0] for s in (1, 2))
    np.testing.assert_array_equal(a, b)


def test_next_day_probabilities_are_distributions(model):
    probs = model.next_day_probabilities(np.full((2, 7, 3), np.nan))
    for p in probs:
        np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-5)
