"""What the experiments share: the default recipe with one candidate, the benchmark's folds, and its scores."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1]))
from fidelity import scores, tstr_target

from synthwear.plugins import default_registry
from synthwear.recipe import Recipe, load_recipe
from synthwear.split import person_folds
from synthwear.steps import evaluation_context, load_data, usable_persons

KEYS = ["discriminative", "tstr_mae", "near_copies"]


def default_recipe(candidates: int = 1) -> Recipe:
    recipe = load_recipe("recipes/fitbit.yaml")
    return recipe.model_copy(update={"training": recipe.training.model_copy(update={"candidates": candidates})})


def folds(recipe: Recipe) -> list[list[str]]:
    """The benchmark's five folds of persons (seed 0)."""
    _, persons, duplicates = usable_persons(recipe, load_data(recipe, default_registry()))
    return person_folds(persons, 5, seed=0, duplicate_groups=duplicates)


def scored(recipe: Recipe, synth, model=None) -> dict:
    """The benchmark's scores of a fitted synthesizer's samples (of ``model`` where given)."""
    if model is not None:
        synth.model = model
    starts = synth.first_days()
    values = synth.sample_array(start=starts)
    context = evaluation_context(recipe, synth.parts, synth.model, values, starts, None, None)
    return scores(context, tstr_target(recipe))


def summary(rows: list[dict], channels: list[str]) -> str:
    """Mean of the main columns, and per fold the mean discriminative score of its rows (folds in order)."""
    keys = KEYS + [f"lag1_error.{c}" for c in channels] + [f"variance_ratio.{c}" for c in channels]
    means = " ".join(f"{key} {np.mean([r[key] for r in rows]):.3f}" for key in keys)
    per = len(rows) // 5
    folds = [round(float(np.mean([r["discriminative"] for r in rows[f * per : (f + 1) * per]])), 3) for f in range(5)]
    return f"{means}\n  discriminative per fold {folds}"
