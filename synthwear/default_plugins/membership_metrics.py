"""Scoring a membership-inference attack: ROC AUC and TPR at low FPR, per person, with bootstrap CIs.

The privacy unit is the person, so an attack's window scores are averaged per person before any
metric is taken, and the bootstrap resamples persons (members and non-members separately, so each
replicate keeps the two group sizes). TPR at FPR x is the TPR of the best threshold whose FPR does
not exceed x; with few non-members, FPR = 1% means "no non-member flagged".
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.integrate import trapezoid
from scipy.stats import rankdata

FPR_TARGETS = {"1pct": 0.01, "10pct": 0.10}


def person_scores(window_scores: np.ndarray, persons: np.ndarray) -> np.ndarray:
    """Mean window score of each person (in the order of ``np.unique(persons)``)."""
    _, index = np.unique(persons, return_inverse=True)
    return np.bincount(index, weights=window_scores) / np.bincount(index)


def tpr_at_fpr(members: np.ndarray, non_members: np.ndarray, fpr_target: float) -> np.ndarray:
    """TPR of the best threshold whose FPR does not exceed ``fpr_target``, per row of replicates
    (members (B, m), non-members (B, n)): at most k = floor(x n) non-members may be flagged, so the
    threshold must lie above the (k+1)-th highest non-member score, and TPR is the share of members
    above it (scikit-learn's ROC curve read at x, which the tests hold it to)."""
    k = int(np.floor(fpr_target * non_members.shape[1] + 1e-9))
    if k >= non_members.shape[1]:
        return np.ones(len(members))
    kth_highest = -np.partition(-non_members, k, axis=1)[:, k]
    return (members > kth_highest[:, None]).mean(axis=1)


def attack_metrics(members: np.ndarray, non_members: np.ndarray) -> dict[str, np.ndarray]:
    """ROC AUC and TPR at each FPR target for rows of replicates: members (B, m) and non-members
    (B, n) scores, higher = "more likely a member". All B at once: the bootstrap draws hundreds of
    replicates, and scikit-learn's per-call checks made them the slowest part of an evaluation.

    AUC is the Mann-Whitney statistic (ties count half), as scikit-learn's ``roc_auc_score``."""
    m, n = members.shape[1], non_members.shape[1]
    ranks = rankdata(np.concatenate([members, non_members], axis=1), axis=1)
    metrics = {"auc": (ranks[:, :m].sum(axis=1) - m * (m + 1) / 2) / (m * n)}
    for name, target in FPR_TARGETS.items():
        metrics[f"tpr_at_fpr_{name}"] = tpr_at_fpr(members, non_members, target)
    return metrics


def evaluate_attack(
    member_scores: np.ndarray, non_member_scores: np.ndarray, *, bootstrap: int, seed: int, confidence: float = 0.95
) -> dict[str, Any]:
    """Per-person scores -> each metric with a percentile bootstrap CI over resampled persons."""
    point = attack_metrics(member_scores[None], non_member_scores[None])
    rng = np.random.default_rng(seed)
    replicates = attack_metrics(
        rng.choice(member_scores, (bootstrap, len(member_scores))),
        rng.choice(non_member_scores, (bootstrap, len(non_member_scores))),
    )
    tail = (1 - confidence) / 2 * 100
    result: dict[str, Any] = {"members": len(member_scores), "non_members": len(non_member_scores)}
    for name, value in point.items():
        result[name] = float(value[0])
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
        "auc": float(trapezoid(tpr_bound(grid, epsilon, delta), grid)),  # numpy < 2 lacks np.trapezoid
        **bounds,
    }
