"""Scoring a membership-inference attack: ROC AUC and TPR at low FPR, per person, with bootstrap CIs.

The privacy unit is the person, so an attack's window scores are averaged per person before any
metric is taken, and the bootstrap resamples persons (members and non-members separately, so each
replicate keeps the two group sizes). TPR at FPR x is the TPR of the best threshold whose FPR does
not exceed x; with few non-members, FPR = 1% means "no non-member flagged".
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

FPR_TARGETS = {"1pct": 0.01, "10pct": 0.10}


def person_scores(window_scores: np.ndarray, persons: np.ndarray) -> np.ndarray:
    """Mean window score of each person (in the order of ``np.unique(persons)``)."""
    _, index = np.unique(persons, return_inverse=True)
    return np.bincount(index, weights=window_scores) / np.bincount(index)


def tpr_at_fpr(labels: np.ndarray, scores: np.ndarray, fpr_target: float) -> float:
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    return float(tpr[np.searchsorted(fpr, fpr_target, side="right") - 1])


def attack_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """labels 1 = member; higher score = "more likely a member"."""
    metrics = {"auc": float(roc_auc_score(labels, scores))}
    for name, target in FPR_TARGETS.items():
        metrics[f"tpr_at_fpr_{name}"] = tpr_at_fpr(labels, scores, target)
    return metrics


def evaluate_attack(
    member_scores: np.ndarray, non_member_scores: np.ndarray, *, bootstrap: int, seed: int, confidence: float = 0.95
) -> dict[str, Any]:
    """Per-person scores -> each metric with a percentile bootstrap CI over resampled persons."""
    labels = np.concatenate([np.ones(len(member_scores)), np.zeros(len(non_member_scores))])
    point = attack_metrics(labels, np.concatenate([member_scores, non_member_scores]))
    rng = np.random.default_rng(seed)
    replicates = {name: [] for name in point}
    for _ in range(bootstrap):
        members = rng.choice(member_scores, len(member_scores))
        non_members = rng.choice(non_member_scores, len(non_member_scores))
        for name, value in attack_metrics(labels, np.concatenate([members, non_members])).items():
            replicates[name].append(value)
    tail = (1 - confidence) / 2 * 100
    result: dict[str, Any] = {"members": len(member_scores), "non_members": len(non_member_scores)}
    for name, value in point.items():
        result[name] = value
        result[f"{name}_ci"] = [
            float(np.percentile(replicates[name], tail)),
            float(np.percentile(replicates[name], 100 - tail)),
        ]
    return result


def tpr_bound(fpr: np.ndarray | float, epsilon: float, delta: float) -> np.ndarray:
    """The highest TPR any attack can reach at this FPR against an (epsilon, delta)-DP release:
    TPR <= e^eps FPR + delta, and symmetrically 1 - TPR >= e^-eps (1 - delta - FPR)."""
    fpr = np.asarray(fpr, dtype=float)
    return np.minimum.reduce(
        [np.ones_like(fpr), np.exp(epsilon) * fpr + delta, 1 - np.exp(-epsilon) * (1 - delta - fpr)]
    )


def guarantee_bounds(epsilon: float, delta: float) -> dict[str, float]:
    """What the formal guarantee allows an attack, beside which the measured attacks are shown."""
    grid = np.linspace(0, 1, 10_001)
    bounds = {f"tpr_at_fpr_{name}": float(tpr_bound(target, epsilon, delta)) for name, target in FPR_TARGETS.items()}
    return {
        "epsilon": epsilon,
        "delta": delta,
        "auc": float(np.trapezoid(tpr_bound(grid, epsilon, delta), grid)),
        **bounds,
    }
