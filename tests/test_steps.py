"""The pipeline's steps on the shipped data: what encoding hands to training."""

import numpy as np
import pytest
import torch

from synthwear.errors import SynthwearError
from synthwear.plugins import default_registry
from synthwear.recipe import load_recipe, parse_recipe
from synthwear.steps import build_model, encode, load_data, split_cohort


@pytest.mark.parametrize("summary_of", ["window", "person"])
def test_every_training_window_opens_with_the_level_the_recipe_asks_for(tiny_recipe, summary_of):
    raw = load_recipe(tiny_recipe).to_dict()
    raw["windows"].update(summary=True, summary_of=summary_of)
    recipe, registry = parse_recipe(raw), default_registry()
    _, parts = split_cohort(recipe, load_data(recipe, registry), lambda note: None)
    model = build_model(recipe, registry, torch.device("cpu"))
    encoded = encode(recipe, model, parts, lambda note: None)
    _, targets = model.training_pair(encoded.train.batch(torch.arange(len(encoded.train))))

    train, days = parts["train"], recipe.windows.days
    bins = model.tokenize(train.values)[0].astype(float)
    bins[bins < 0] = np.nan
    person_means = [np.nanmean(bins[a:b], axis=0) for a, b in zip(train.offsets[:-1], train.offsets[1:])]
    rows = encoded.train.starts.numpy()[:, None] + np.arange(days)
    expected = {"person": np.array(person_means)[encoded.train_persons], "window": np.nanmean(bins[rows], axis=1)}
    level = targets[:, 0].numpy().astype(float)
    level[level < 0] = np.nan  # MISSING: no observed day
    np.testing.assert_allclose(level, np.round(expected[summary_of]), atol=1)  # ties round either way
    other = expected["window" if summary_of == "person" else "person"]
    assert np.nanmax(np.abs(level - np.round(other))) >= 2  # the two levels do differ


def test_refit_windows_are_every_training_and_validation_window(tiny_recipe):
    """Not the validation subsample that scores epochs: every window of both parts, rows shifted past training's."""
    raw = load_recipe(tiny_recipe).to_dict()
    raw["training"]["refit"] = True
    raw["evaluation"]["max_windows"] = 5  # the validation windows scored: a subsample
    recipe, registry = parse_recipe(raw), default_registry()
    _, parts = split_cohort(recipe, load_data(recipe, registry), lambda note: None)
    encoded = encode(recipe, build_model(recipe, registry, torch.device("cpu")), parts, lambda note: None)
    days, stride, least = recipe.windows.days, recipe.windows.stride, recipe.windows.min_observed
    every_validation = parts["validation"].window_starts(days, stride, least)
    assert len(encoded.validation) == 5 < len(every_validation)
    assert len(encoded.refit) == len(encoded.train) + len(every_validation)
    shifted = len(encoded.train.tokens)
    assert torch.equal(
        encoded.refit.batch(torch.arange(len(encoded.train))), encoded.train.batch(torch.arange(len(encoded.train)))
    )
    assert torch.equal(encoded.refit.tokens[shifted:], encoded.validation.tokens)  # the validation persons' days
    assert torch.equal(encoded.refit.starts[len(encoded.train) :], torch.from_numpy(every_validation) + shifted)


def test_too_few_persons_with_a_window_names_the_window_settings(tiny_recipe):
    raw = load_recipe(tiny_recipe).to_dict()
    raw["windows"]["days"] = 400
    recipe = parse_recipe(raw)
    with pytest.raises(SynthwearError, match=r"windows.days = 400 days.*: 0 person\(s\) with a usable window"):
        split_cohort(recipe, load_data(recipe, default_registry()), lambda note: None)
