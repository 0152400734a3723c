"""Discriminative score (TimeGAN's definition): |accuracy - 0.5| of a classifier telling real
holdout windows from another cohort's windows, cross-validated. 0 means indistinguishable.

The classifier: scikit-learn's HistGradientBoostingClassifier (fixed seed) on six summary features
per channel and window (mean, standard deviation, minimum, maximum, mean absolute day-to-day
change, lag-1 autocorrelation). The classes are balanced by subsampling the larger one, and the
cohort's windows take on the missing days of randomly chosen holdout windows first, so that the
classifier cannot win merely because synthetic data has no gaps (a cohort with gaps of its own keeps
them: a model that generates gaps is judged on how it does).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

from synthwear.fidelity_scale import REFERENCES, scale_candidates, verdict_row
from synthwear.hookspecs import hookimpl
from synthwear.interfaces import EvaluationContext
from synthwear.report.html import REFERENCE_COLOURS, REFERENCE_LABELS, figure, fmt, table


def window_features(values: np.ndarray) -> np.ndarray:
    """(N, T, C) windows -> (N, 6C) summary features; NaN where a channel has too few observed days."""
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", RuntimeWarning
        )  # all-missing channels give NaN features, which the trees handle
        centred = values - np.nanmean(values, axis=1, keepdims=True)
        lag1 = np.nansum(centred[:, 1:] * centred[:, :-1], axis=1) / np.nansum(centred**2, axis=1)
        return np.concatenate(
            [
                np.nanmean(values, axis=1),
                np.nanstd(values, axis=1),
                np.nanmin(values, axis=1),
                np.nanmax(values, axis=1),
                np.nanmean(np.abs(np.diff(values, axis=1)), axis=1),
                lag1,
            ],
            axis=1,
        )


def varying_columns(x: np.ndarray) -> np.ndarray:
    """Features with at least two distinct observed values: a constant or all-missing feature (a
    constant channel, a channel absent from the real windows) tells nothing, and scikit-learn's
    histogram binning fails on it."""
    return np.array([len(np.unique(column[~np.isnan(column)])) > 1 for column in x.T], dtype=bool)


def with_missing_days_of(values: np.ndarray, donor: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each window gets the missing cells of a random donor window, unless the cohort has gaps of its
    own (a model that generates gaps is judged on them)."""
    if np.isnan(values).any():
        return values
    mask = np.isnan(donor[rng.integers(0, len(donor), len(values))])
    return np.where(mask, np.nan, values)


MIN_WINDOWS_PER_CLASS = 5  # below this, every fold trains on a handful of windows: no score, a reason
LEAF_ROWS = 20  # the trees' smallest leaf: scikit-learn's default, wherever a fold's rows allow it


def leaf_rows(rows: int) -> int:
    """The smallest leaf for trees fitted on ``rows`` windows: 20, or half the rows where those are
    fewer than two leaves of 20. With 20 a tree of fewer than 40 rows cannot split at all: every
    prediction is the fold's class share, and a holdout of fewer than 25 windows per class got the
    same score (0.045 at 22) whatever the cohort, reported as if measured."""
    return min(LEAF_ROWS, max(1, rows // 2))


@dataclass
class DiscriminativeConfig:
    folds: int = 5  # cross-validation folds (fewer when a class has fewer windows)
    repeats: int = 3  # fresh balanced subsample and fold split per repeat; accuracies are averaged


class DiscriminativeScore:
    def __init__(self, config: DiscriminativeConfig = DiscriminativeConfig()):
        self.config = config

    def evaluate(self, context: EvaluationContext) -> dict[str, Any]:
        real = context.holdout.values
        scores: dict[str, float | None] = {}
        details: dict[str, Any] = {}
        for name, windows in scale_candidates(context).items():
            other = windows.values
            if name != "ceiling":
                other = with_missing_days_of(other, real, np.random.default_rng(context.seed))
            with threadpool_limits(1):  # tiny fits: OpenMP threads cost far more than they save, worst on busy CPUs
                details[name] = self.cross_validate(real, other, context.seed)
            scores[name] = details[name]["score"]
        row = verdict_row(
            "discriminative score |accuracy − 0.5|", None, scores, higher_is_better=False, resolution=0.05
        )
        return {
            "classifier": "HistGradientBoostingClassifier on per-window summary features",
            **details,
            "verdict": [row],
        }

    def cross_validate(self, real: np.ndarray, other: np.ndarray, seed: int) -> dict[str, Any]:
        """Mean out-of-fold accuracy over repeats, and the first repeat's ROC curve."""
        n = min(len(real), len(other))
        folds = min(self.config.folds, n)
        if n < MIN_WINDOWS_PER_CLASS:
            reason = f"{n} windows per class; a cross-validated classifier needs at least {MIN_WINDOWS_PER_CLASS}"
            return {"score": None, "accuracy": None, "windows_per_class": n, "unavailable": reason}
        accuracies, roc = [], {}
        for repeat in range(self.config.repeats):
            rng = np.random.default_rng(seed + repeat)
            x = window_features(
                np.concatenate(
                    [real[rng.choice(len(real), n, replace=False)], other[rng.choice(len(other), n, replace=False)]]
                )
            )
            y = np.repeat([1, 0], n)
            probability = np.empty(2 * n)
            for fit, test in StratifiedKFold(folds, shuffle=True, random_state=seed + repeat).split(x, y):
                varying = varying_columns(x[fit])
                if not varying.any():  # nothing to tell the classes apart by: the classifier can only guess
                    probability[test] = 0.5
                    continue
                classifier = HistGradientBoostingClassifier(
                    random_state=seed, max_iter=100, min_samples_leaf=leaf_rows(len(fit))
                )
                classifier.fit(x[fit][:, varying], y[fit])
                probability[test] = classifier.predict_proba(x[test][:, varying])[:, 1]
            accuracies.append(float(((probability > 0.5) == y).mean()))
            if repeat == 0:
                fpr, tpr, _ = roc_curve(y, probability)
                roc = {
                    "fpr": np.round(fpr, 4).tolist(),
                    "tpr": np.round(tpr, 4).tolist(),
                    "auc": float(roc_auc_score(y, probability)),
                }
        accuracy = float(np.mean(accuracies))
        return {
            "score": abs(accuracy - 0.5),
            "accuracy": accuracy,
            "accuracy_sd": float(np.std(accuracies)),
            "windows_per_class": n,
            "folds": folds,
            "roc": roc,
        }

    def report_section(self, results: dict[str, Any], run: dict[str, Any]) -> str:
        fig = go.Figure(
            go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance", line=dict(color="#bbb", dash="dot"))
        )
        rows = []
        for name in REFERENCES:
            r = results[name]
            rows.append(
                [
                    REFERENCE_LABELS[name],
                    fmt(r["score"]),
                    fmt(r["accuracy"]),
                    fmt(r.get("accuracy_sd")),
                    fmt(r.get("roc", {}).get("auc")),
                    fmt(r["windows_per_class"]),
                ]
            )
            if r.get("roc"):
                fig.add_trace(
                    go.Scatter(
                        x=r["roc"]["fpr"],
                        y=r["roc"]["tpr"],
                        mode="lines",
                        name=REFERENCE_LABELS[name],
                        line=dict(color=REFERENCE_COLOURS[name]),
                    )
                )
        fig.update_layout(
            title="Discriminator ROC: real holdout windows against each cohort",
            xaxis_title="false positive rate",
            yaxis_title="true positive rate",
        )
        return (
            "<h2>Discriminative score</h2><p>A classifier (gradient-boosted trees on per-window summary features, "
            "cross-validated with fixed seeds) tries to tell real holdout windows from a cohort's windows, which "
            "first take on the missing days of real windows. Score = |accuracy − 0.5|: 0 is indistinguishable, "
            "0.5 perfectly told apart. A curve on the diagonal means the classifier is guessing.</p>"
            + figure(fig, height=360)
            + table(["against", "score", "accuracy", "accuracy sd (repeats)", "ROC AUC", "windows per class"], rows)
        )


@hookimpl
def register_evaluators(register):
    register("discriminative", DiscriminativeScore)
