"""The deviations mixture's logit shifted per channel after training, fitted like persistence: seven
bisection steps over (-3, 3), each sampling 1,000 windows with the training windows' gaps, until a
statistic of the samples is the training windows' own; persistence fitted before and again after.
Two statistics: the between-window share of variance, and the mean within-window sd. Per fold, the
default recipe with one candidate, seeds 0 and 1; every setting sampled from the same training.

    python benchmarks/experiments/mixture_shift.py
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from common import default_recipe, folds, scored, summary

from synthwear import Synthesizer
from synthwear.default_plugins.discriminative import with_missing_days_of
from synthwear.default_plugins.temporal import between_window_share
from synthwear.persistence import fit_persistence
from synthwear.sampling import recipe_windows
from synthwear.steps import evaluation_windows


def shares(windows: np.ndarray) -> np.ndarray:
    return np.array([between_window_share(windows[:, :, c]) for c in range(windows.shape[-1])], dtype=float)


def negative_sds(windows: np.ndarray) -> np.ndarray:
    """Minus the mean within-window sd: like the share, it falls as the marginal's share rises."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return -np.nanmean(np.nanstd(windows, axis=1), axis=0)


def shifted(heads, biases, shift) -> None:
    with torch.no_grad():
        for head, bias, by in zip(heads, biases, shift):
            head.bias.copy_(bias + float(by))


def fit_shift(recipe, model, training_windows, seed, statistic, heads, biases) -> np.ndarray:
    target = statistic(training_windows)
    low, high = np.full(len(target), -3.0), np.full(len(target), 3.0)
    for _ in range(7):
        middle = (low + high) / 2
        shifted(heads, biases, middle)
        synthetic, _, _ = recipe_windows(recipe, model, 1000, seed)
        measured = statistic(with_missing_days_of(synthetic, training_windows, np.random.default_rng(seed)))
        above = measured > target  # too much between-person variance, or too little spread: more marginal
        low, high = np.where(above, middle, low), np.where(above, high, middle)
    return (low + high) / 2


def main() -> None:
    recipe = default_recipe()
    statistics = {"nothing (the default)": None, "between-window share": shares, "within-window sd": negative_sds}
    rows: dict[str, list[dict]] = {name: [] for name in statistics}
    for k, holdout in enumerate(folds(recipe), 1):
        for seed in (0, 1):
            seeded = recipe.model_copy(update={"seed": seed})
            synth = Synthesizer(seeded).fit(holdout_persons=holdout, progress=False)
            training_windows = evaluation_windows(seeded, synth.parts["train"]).values
            heads = synth.model.generator.mixture_heads
            biases = [head.bias.detach().clone() for head in heads]
            persistence = list(synth.model.persistence)
            for name, statistic in statistics.items():
                synth.model.persistence, shift = persistence, np.zeros(len(heads))
                if statistic is not None:
                    shift = fit_shift(seeded, synth.model, training_windows, seed, statistic, heads, biases)
                shifted(heads, biases, shift)
                if statistic is not None:
                    synth.model.persistence = fit_persistence(seeded, synth.model, training_windows, seed)
                rows[name].append(scored(seeded, synth))
                print(
                    f"fold {k} seed {seed} {name}: shift {np.round(shift, 2)}, {rows[name][-1]['discriminative']:.3f}"
                )
    for name, scores in rows.items():
        print(name, summary(scores, recipe.channels))


if __name__ == "__main__":
    main()
