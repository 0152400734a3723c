"""Small generated cohorts with known structure, for the fidelity evaluators' tests.

Each person has their own level per channel and an AR(1) day-to-day wobble around it, so a
faithful cohort has autocorrelation, between-person variance and the right marginals, while the
broken cohorts below each lack one of them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from synthwear.interfaces import EvaluationContext, Windows
from synthwear.plugins import default_registry
from synthwear.recipe import load_recipe
from synthwear.steps import build_model

TINY = Path(__file__).parents[2] / "recipes" / "tiny.yaml"
CHANNELS = ["resting_hr", "sleep_minutes", "steps"]
LEVEL_MEAN, LEVEL_SD, DAY_SD = (
    np.array([62.0, 420.0, 9000.0]),
    np.array([6.0, 40.0, 2500.0]),
    np.array([2.0, 50.0, 2000.0]),
)


def persons(
    n: int, days: int, seed: int, *, phi: float = 0.8, person_levels: bool = True, gaps: float = 0.0
) -> Windows:
    """n persons x days: level + AR(1) noise with lag-1 correlation ``phi``; ``gaps`` share of cells missing."""
    rng = np.random.default_rng(seed)
    levels = LEVEL_MEAN + (rng.normal(size=(n, 1, 3)) * LEVEL_SD if person_levels else 0.0)
    noise = np.empty((n, days, 3))
    noise[:, 0] = rng.normal(size=(n, 3))
    for t in range(1, days):
        noise[:, t] = phi * noise[:, t - 1] + np.sqrt(1 - phi**2) * rng.normal(size=(n, 3))
    spread = DAY_SD if person_levels else np.sqrt(DAY_SD**2 + LEVEL_SD**2)
    values = levels + noise * spread
    values[rng.random(values.shape) < gaps] = np.nan
    return Windows(values, np.array([f"p{seed}-{i}" for i in range(n)]))


def context(synthetic: Windows, *, days: int = 14, seed: int = 0, holdout: int = 60) -> EvaluationContext:
    """Real train and ``holdout`` persons from the generator above, beside the given synthetic cohort."""
    model = build_model(load_recipe(TINY), default_registry(), torch.device("cpu"))  # untrained: only its bins are used
    return EvaluationContext(
        model, CHANNELS, persons(120, days, 1, gaps=0.1), persons(holdout, days, 2, gaps=0.1), synthetic, seed
    )
