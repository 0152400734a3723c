"""The pipeline's steps on the shipped data: what encoding hands to training."""

import numpy as np
import pytest
import torch

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
