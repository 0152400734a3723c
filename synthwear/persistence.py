"""``sampling.persistence: auto``: each channel's persistence fitted after training, so that the
samples' days follow each other as the training persons' days do.

Why: fitted by one-day-ahead likelihood on a few dozen persons, the model's best distribution for a
new person's next day is broad (on LifeSnaps resting HR's validation loss is lowest after three
epochs), and days drawn independently from it jitter where real series drift: samples' resting HR
lag-1 autocorrelation 0.66 against 0.79 (docs/benchmarks.md, session 19). Persistent quantiles
(``model.Quantiles``) leave every day's distribution as the model has it and make consecutive draws
correlated. Rather than a number picked by hand for one cohort, each channel's correlation is found
by bisection: samples drawn with the recipe's settings, given the training windows' gaps, until
their mean within-window lag-1 autocorrelation (the discriminative evaluator's feature) is the
training windows' own. Only the training persons are read, so validation and holdout persons stay
unseen; under differential privacy the recipe refuses ``auto`` (the accountant does not count it).
"""

from __future__ import annotations

import warnings

import numpy as np

from synthwear.default_plugins.discriminative import window_features, with_missing_days_of
from synthwear.model import SynthesisModel
from synthwear.recipe import Recipe
from synthwear.sampling import recipe_windows

BOUND = 0.9  # the correlations searched: (-BOUND, BOUND)
STEPS = 7  # bisection steps: the interval shrinks to 1.8 / 2**7 = 0.014
WINDOWS = 1000  # synthetic windows per step: the mean lag-1 to about ±0.01


def mean_lag1(windows: np.ndarray) -> np.ndarray:
    """(N, T, C) windows -> (C,) the mean over windows of each channel's lag-1 autocorrelation
    (NaN for a channel with none)."""
    n_channels = windows.shape[-1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a channel never observed: NaN, left at 0 below
        return np.nanmean(window_features(windows)[:, -n_channels:], axis=0)


def fit_persistence(recipe: Recipe, model: SynthesisModel, training_windows: np.ndarray, seed: int) -> list[float]:
    """Per channel, the persistence whose samples' mean lag-1 autocorrelation matches the training
    windows' (0 for a channel whose lag-1 cannot be measured, and for every channel without windows).
    The same draws at every step (one seed), so the measured lag-1 rises smoothly with the
    persistence and the bisection converges."""
    if len(training_windows) == 0:  # no training window to measure: independent draws
        return [0.0] * training_windows.shape[-1]
    target = mean_lag1(training_windows)
    unmeasured = np.isnan(target)
    low, high = np.full(len(target), -BOUND), np.full(len(target), BOUND)
    for _ in range(STEPS):
        middle = (low + high) / 2
        synthetic, _, _ = recipe_windows(recipe, model, WINDOWS, seed, persistence=list(middle))
        gapped = with_missing_days_of(synthetic, training_windows, np.random.default_rng(seed))
        measured = mean_lag1(gapped)
        unmeasured |= np.isnan(measured)  # constant samples: no lag-1 to match
        above = measured > target
        low, high = np.where(above, low, middle), np.where(above, middle, high)
    fitted = np.where(unmeasured, 0.0, (low + high) / 2)
    return [round(float(rho), 3) for rho in fitted]
