"""Picking a training by its validation persons: per fold the default recipe with five candidates
(its first three are exactly the default's), each scored on the fold's unseen persons and, on its
validation persons, by criteria a pick could use; then which training each criterion would keep of
the first three and of all five, and how well each criterion follows the unseen persons' score.

Criteria: the candidates' score (``synthwear.candidates.validation_score``, the mean of its samples)
and one sample's score (``draw_score``), and without a classifier the |AUC - 0.5| of each summary
feature between 1,000 samples (with the validation windows' gaps) and the validation windows, as the
root mean square or the mean over features.

    python benchmarks/experiments/pick_criteria.py
"""

from __future__ import annotations

import numpy as np
from common import default_recipe, folds, scored
from sklearn.metrics import roc_auc_score

import synthwear.synthesizer as synthesizer
from synthwear import Synthesizer
from synthwear.candidates import SCORING_STREAM, Candidate, candidate_seed, derived_seed, draw_score, validation_score
from synthwear.default_plugins.discriminative import window_features, with_missing_days_of
from synthwear.plugins import default_registry
from synthwear.sampling import recipe_windows
from synthwear.steps import evaluation_windows

CANDIDATES = 5
trained = []  # this fold's candidate models, in order


def every_candidate(recipe, train_one, parts, registry):
    """In place of ``best_candidate``: train them all and keep them; which the fit holds does not matter."""
    trained.clear()
    for index in range(recipe.training.candidates):
        model, result = train_one(index, candidate_seed(recipe.seed, index))
        trained.append(model)
    return trained[0], Candidate(0, recipe.seed, result, 0.0), []


def feature_aucs(recipe, model, parts, seed: int = 7, n: int = 1000) -> np.ndarray:
    real = evaluation_windows(recipe, parts["validation"]).values
    synthetic, _, _ = recipe_windows(recipe, model, n, seed)
    a = window_features(real)
    b = window_features(with_missing_days_of(synthetic, real, np.random.default_rng(seed)))
    aucs = []
    for j in range(a.shape[1]):
        x, y = a[~np.isnan(a[:, j]), j], b[~np.isnan(b[:, j]), j]
        if len(x) > 1 and len(y) > 1:
            aucs.append(roc_auc_score(np.r_[np.ones(len(x)), np.zeros(len(y))], np.r_[x, y]) - 0.5)
    return np.abs(aucs)


def criteria(recipe, model, parts, registry) -> dict[str, float]:
    aucs = feature_aucs(recipe, model, parts)
    first = derived_seed(derived_seed(recipe.seed, SCORING_STREAM), 0)
    return {
        "mean of samples (the default)": validation_score(recipe, model, parts, registry),
        "one sample": draw_score(recipe, model, parts, registry, first),
        "feature AUCs, root mean square": float(np.sqrt((aucs**2).mean())),
        "feature AUCs, mean": float(aucs.mean()),
    }


def main() -> None:
    synthesizer.best_candidate, synthesizer.kept_note = every_candidate, lambda *args: ""
    recipe, registry = default_recipe(CANDIDATES), default_registry()
    dealt = []
    for k, holdout in enumerate(folds(recipe), 1):
        synth = Synthesizer(recipe).fit(holdout_persons=holdout, progress=False)
        fold = []
        for i, model in enumerate(list(trained)):
            fold.append({"unseen": scored(recipe, synth, model)["discriminative"]})
            fold[-1] |= criteria(recipe, model, synth.parts, registry)
            print(f"fold {k} candidate {i + 1}: " + ", ".join(f"{key} {value:.3f}" for key, value in fold[-1].items()))
        dealt.append(fold)
    print(f"mean of all trainings {np.mean([[c['unseen'] for c in f] for f in dealt]):.3f}")
    for name in dealt[0][0]:
        if name == "unseen":
            continue
        for n in (3, CANDIDATES):
            kept = [f[int(np.argmin([c[name] for c in f[:n]]))]["unseen"] for f in dealt]
            print(f"best of {n} by {name}: {np.mean(kept):.3f} {np.round(kept, 3).tolist()}")
        r = [np.corrcoef([c[name] for c in f], [c["unseen"] for c in f])[0, 1] for f in dealt]
        print(f"  within-fold r {np.nanmean(r):+.2f} {np.round(r, 2).tolist()}")


if __name__ == "__main__":
    main()
