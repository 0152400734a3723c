"""Would keeping, of several trainings, the one its validation persons tell apart least give better models?

    python benchmarks/candidates.py                  # 5 folds x 3 trainings of recipes/fitbit.yaml
    python benchmarks/candidates.py --quick          # 2 folds x 2 trainings of 2 epochs: a smoke test

On a few dozen persons, trainings of one recipe that differ only in their seed score very differently
on unseen persons (fold 4 of LifeSnaps: 0.04 to 0.21 discriminative). This measures whether that can
be told before release: each training is scored on the fold's unseen persons, as
``benchmarks/fidelity.py`` scores it (the same folds and seeds, so the same numbers), and on its own
early-stopping validation persons (samples drawn with another seed); per fold the training with the
lowest validation score is "picked". The table compares the picked trainings with the mean of all,
fold by fold, and says where the pick ranked among the trainings on unseen persons.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from fidelity import REPO, scores, synthwear_fold, tstr_target

from synthwear.default_plugins.discriminative import DiscriminativeScore
from synthwear.plugins import default_registry
from synthwear.recipe import load_recipe
from synthwear.split import person_folds
from synthwear.steps import evaluation_context, evaluation_windows, load_data, usable_persons

VALIDATION_SAMPLE_SEED = 11  # the validation persons judge samples other than those scored on unseen persons


def validation_score(fold: dict) -> float:
    """Discriminative score of a training's samples (seed ``VALIDATION_SAMPLE_SEED``) against its
    own validation persons' windows: what a user could compute without any held-out person."""
    synth, parts = fold["synthesizer"], fold["parts"]
    starts = synth.first_days(seed=VALIDATION_SAMPLE_SEED)
    codes = synth.attribute_codes(synth.synthetic_persons())
    synthetic = synth.sample_array(start=starts, attributes=codes, seed=VALIDATION_SAMPLE_SEED)
    context = evaluation_context(synth.recipe, parts, synth.model, synthetic, starts, None, codes)
    context = replace(context, holdout=evaluation_windows(synth.recipe, parts["validation"]))
    return DiscriminativeScore().evaluate(context)["synthetic"]["score"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", type=Path, default=REPO / "recipes" / "fitbit.yaml")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--trainings", type=int, default=3, help="trainings per fold (seeds seed, seed + 1, ...)")
    parser.add_argument("--quick", action="store_true", help="2 folds, 2 trainings of 2 epochs: a smoke test")
    args = parser.parse_args(argv)
    recipe = load_recipe(args.recipe)
    recipe.training.candidates = 1  # this benchmark makes the trainings and the choice itself
    folds, trainings = (2, 2) if args.quick else (args.folds, args.trainings)
    if args.quick:
        recipe.training.epochs, recipe.sampling.persons = 2, 60
    loaded = load_data(recipe, default_registry())
    _, persons, duplicates = usable_persons(recipe, loaded)
    picked, means, ranks = [], [], []
    print("| fold | unseen persons: each training | validation persons: each training | picked | mean |")
    print("|---|---|---|---|---|")
    for k, holdout in enumerate(person_folds(persons, folds, seed=0, duplicate_groups=duplicates)):
        unseen, validation = [], []
        for r in range(trainings):
            fold = synthwear_fold(recipe.model_copy(update={"seed": recipe.seed + r}), holdout)
            unseen.append(scores(fold["context"], tstr_target(recipe), copies=False)["discriminative"])
            validation.append(validation_score(fold))
        pick = int(np.argmin(validation))
        picked.append(unseen[pick])
        means.append(float(np.mean(unseen)))
        ranks.append(1 + int(np.sum(np.array(unseen) < unseen[pick])))
        cells = [", ".join(f"{x:.3f}" for x in column) for column in (unseen, validation)]
        print(f"| {k + 1} | {cells[0]} | {cells[1]} | {unseen[pick]:.3f} | {means[-1]:.3f} |", flush=True)
    print(
        f"\nPicked by validation: {np.mean(picked):.3f} ± {np.std(picked):.3f}; mean of all trainings: "
        f"{np.mean(means):.3f} ± {np.std(means):.3f} (discriminative on unseen persons, mean ± sd over folds). "
        f"The pick's rank on unseen persons, per fold (1 = best of {trainings}): {ranks}."
    )


if __name__ == "__main__":
    main(sys.argv[1:])
