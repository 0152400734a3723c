import numpy as np
import pytest
import torch

from synthwear.persistence import fit_persistence, mean_lag1
from synthwear.plugins import default_registry
from synthwear.recipe import load_recipe
from synthwear.steps import build_model


def test_mean_lag1_is_each_channels_autocorrelation_within_windows_and_nan_where_unobserved():
    rng = np.random.default_rng(0)
    windows = np.zeros((200, 100, 3))
    windows[:, 0] = rng.normal(size=(200, 3))
    for t in range(1, 100):  # channel 0 an AR(1) at 0.7, channel 1 independent days
        windows[:, t] = [0.7, 0.0, 0.0] * windows[:, t - 1] + rng.normal(size=(200, 3))
    windows[:, :, 2] = np.nan
    lag1 = mean_lag1(windows)
    assert lag1[0] == pytest.approx(0.7, abs=0.05) and lag1[1] == pytest.approx(0.0, abs=0.05)
    assert np.isnan(lag1[2])


def test_the_fitted_persistence_gives_back_what_made_the_training_windows(tiny_recipe):
    recipe = load_recipe(tiny_recipe)
    torch.manual_seed(0)
    model = build_model(recipe, default_registry(), torch.device("cpu"))
    with torch.no_grad():  # every day uniform over its bins, whatever came before: persistence alone links days
        for parameter in model.generator.parameters():
            parameter.zero_()
    made_with = [0.6, 0.0, -0.3]
    training = model.generate(1500, recipe.windows.days, seed=11, persistence=made_with)
    training[::4, 2:4, 1] = np.nan  # gaps, as real windows have
    fitted = fit_persistence(recipe, model, training, seed=0)
    np.testing.assert_allclose(fitted, made_with, atol=0.1)
    assert all(-0.9 < rho < 0.9 for rho in fitted)


def test_without_training_windows_or_an_observed_channel_the_draws_stay_independent(tiny_recipe):
    recipe = load_recipe(tiny_recipe)
    model = build_model(recipe, default_registry(), torch.device("cpu"))
    assert fit_persistence(recipe, model, np.empty((0, recipe.windows.days, 3)), seed=0) == [0.0] * 3
    never_slept = model.generate(300, recipe.windows.days, seed=1)
    never_slept[..., 1] = np.nan
    assert fit_persistence(recipe, model, never_slept, seed=0)[1] == 0.0
