"""Several trainings of one recipe, and the one its validation persons tell apart least kept
(``training.candidates``).

On a few dozen persons, trainings that differ only in their seed differ on unseen persons as much as
recipes do (LifeSnaps, one fold: discriminative 0.04 to 0.21 across three seeds). The validation
persons early stopping already holds out can tell the better trainings apart before release: each
candidate samples one window per validation window, the project's discriminative evaluator scores
those samples against the validation persons, and the lowest score is kept. No holdout person is
read. Under differential privacy this is refused: every candidate would spend the budget again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from synthwear.checkpoint import Checkpointing
from synthwear.cohort import Cohort
from synthwear.default_plugins.discriminative import MIN_WINDOWS_PER_CLASS
from synthwear.model import SynthesisModel
from synthwear.plugins import Registry
from synthwear.recipe import Recipe
from synthwear.sampling import recipe_windows
from synthwear.steps import evaluation_context, evaluation_windows
from synthwear.train import TrainingResult

SCORING_STREAM = 0  # the validation samples' seed stream; candidate i >= 1 trains on stream i
# Samples scored per candidate, their scores averaged: one sample's score against ~30 validation windows
# moves with its seed alone by up to 0.09 on LifeSnaps (0.006, 0.098, 0.029 for one training), as
# much as the trainings it is to tell apart differ (docs/benchmarks.md, session 21).
SCORING_DRAWS = 3


def derived_seed(seed: int, stream: int) -> int:
    """A seed of its own for ``stream``, apart from seed + 1, seed + 2, ... (which users and benchmarks
    take for repeated runs, so candidates of those runs never share a training)."""
    return int(np.random.SeedSequence([seed, stream]).generate_state(1)[0])


def candidate_seed(seed: int, index: int) -> int:
    """Candidate 0 trains with the recipe's own seed: one candidate is exactly the plain training."""
    return seed if index == 0 else derived_seed(seed, index)


@dataclass
class Candidate:
    """One training of the recipe: its seed, how it trained, and its validation persons' score."""

    index: int
    seed: int
    result: TrainingResult
    score: float

    def to_dict(self) -> dict[str, Any]:
        result = self.result
        return {
            "candidate": self.index + 1,
            "seed": self.seed,
            "validation_discriminative": self.score,
            "epochs": result.epochs,
            "best_epoch": result.best_epoch,
            "best_validation_loss": result.best_validation_loss,
            "seconds": result.seconds,
        }


def scorable_candidates(recipe: Recipe, validation: Cohort, log: Callable[[str], None]) -> Recipe:
    """Before any training: the recipe, or, where the validation persons have too few windows for the
    discriminative evaluator to tell trainings apart, the recipe with one training (and a note saying
    why), so that a recipe asking for several still runs on a small cohort."""
    asked = recipe.training.candidates
    n = len(evaluation_windows(recipe, validation).values) if asked > 1 else MIN_WINDOWS_PER_CLASS
    if n >= MIN_WINDOWS_PER_CLASS:
        return recipe
    log(
        f"{recipe.where()}: training.candidates: {asked} needs at least {MIN_WINDOWS_PER_CLASS} non-overlapping "
        f"validation windows to tell the trainings apart, and the validation persons have {n}: one training"
    )
    return recipe.model_copy(update={"training": recipe.training.model_copy(update={"candidates": 1})})


def candidate_checkpointing(checkpointing: Checkpointing | None, index: int) -> Checkpointing | None:
    """Candidate i's own checkpoint beside the run's (``….checkpoint-2.safetensors``, …): a killed run
    resumes every candidate, and a finished one's file gives back its result without training."""
    if checkpointing is None or index == 0:
        return checkpointing
    path = Path(checkpointing.path)
    own = path.with_name(f"{path.stem}-{index + 1}{path.suffix}")
    return replace(checkpointing, path=own, digest=f"{checkpointing.digest}:{index}")


def validation_score(recipe: Recipe, model: SynthesisModel, parts: dict[str, Cohort], registry: Registry) -> float:
    """The mean discriminative score of ``SCORING_DRAWS`` samples of the model against the validation
    persons' windows (each of another seed)."""
    scoring = derived_seed(recipe.seed, SCORING_STREAM)
    draws = [draw_score(recipe, model, parts, registry, derived_seed(scoring, d)) for d in range(SCORING_DRAWS)]
    return float(np.mean(draws))


def draw_score(recipe: Recipe, model: SynthesisModel, parts: dict[str, Cohort], registry: Registry, seed: int) -> float:
    """The discriminative score of one sample of the model against the validation persons' windows (as
    many synthetic windows as real ones; the sampling settings of the recipe, no conditions on persons)."""
    n = len(evaluation_windows(recipe, parts["validation"]).values)
    synthetic, starts, codes = recipe_windows(recipe, model, n, seed)
    judged = {"train": parts["train"], "holdout": parts["validation"]}
    context = evaluation_context(recipe, judged, model, synthetic, starts, None, codes)
    evaluator = registry.build("evaluators", "discriminative", {}, where=f"{recipe.where()}: training.candidates")
    return float(evaluator.evaluate(context)["synthetic"]["score"])


def best_candidate(
    recipe: Recipe,
    train_one: Callable[[int, int], tuple[SynthesisModel, TrainingResult]],
    parts: dict[str, Cohort],
    registry: Registry,
) -> tuple[SynthesisModel, Candidate, list[Candidate]]:
    """Train ``training.candidates`` times (``train_one(index, seed)`` returns a trained model) and keep
    the model of the lowest validation score (the first of equals); also every candidate, in order."""
    kept, candidates = None, []
    for index in range(recipe.training.candidates):
        seed = candidate_seed(recipe.seed, index)
        model, result = train_one(index, seed)
        candidates.append(Candidate(index, seed, result, validation_score(recipe, model, parts, registry)))
        if kept is None or candidates[-1].score < kept[1].score:
            kept = (model, candidates[-1])
    return kept[0], kept[1], candidates


def kept_note(kept: Candidate, candidates: list[Candidate]) -> str:
    scores = ", ".join(f"{c.score:.3f}" for c in candidates)
    return f"kept training {kept.index + 1} of {len(candidates)} (validation discriminative scores {scores})"
