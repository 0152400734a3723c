"""Three membership-inference attacks, each scoring real windows (higher = "more likely trained on").

- distance to the closest synthetic record: a generator that copies its training data puts
  synthetic windows on top of members' windows;
- DOMIAS (van Breugel et al., AISTATS 2023): log p_synthetic(x) - log p_reference(x); overfitting
  shows as synthetic density that the population (reference) density does not explain;
- white-box likelihood: the trained generator's mean log-probability of a window's observed bins.

Windows are compared as vectors in [0, 1]: each channel scaled by its public range (the recipe's,
never the data's), a missing day filled with the window's own mean for that channel (0.5 where the
channel is missing all window), so no other person's data enters a window's features.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import solve_triangular
from sklearn.covariance import LedoitWolf
from sklearn.decomposition import PCA
from sklearn.metrics import pairwise_distances_argmin_min
from sklearn.neighbors import KernelDensity

from synthwear.errors import NotEstimable
from synthwear.model import SynthesisModel


def window_features(values: np.ndarray, ranges: list[tuple[float, float]]) -> np.ndarray:
    """(N, T, C) values -> (N, T*C) features in [0, 1], gaps filled within the window."""
    low, high = np.array(ranges, dtype=float).T
    scaled = np.clip((values - low) / (high - low), 0, 1)
    observed = (~np.isnan(scaled)).sum(axis=1, keepdims=True)  # (N, 1, C)
    window_mean = np.where(observed > 0, np.nansum(scaled, axis=1, keepdims=True) / np.maximum(observed, 1), 0.5)
    filled = np.where(np.isnan(scaled), window_mean, scaled)
    return filled.reshape(len(values), -1)


def closest_distance(features: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Root-mean-square distance of each row to its nearest candidate row."""
    _, distance = pairwise_distances_argmin_min(features, candidates)
    return distance / np.sqrt(features.shape[1])


def distance_attack(real: np.ndarray, synthetic: np.ndarray) -> np.ndarray:
    """Closer to some synthetic window = more likely a member."""
    return -closest_distance(real, synthetic)


class GaussianDensity:
    """A Gaussian kernel density whose kernel is Scott's factor times a shrunk covariance of the points.

    It is scipy's ``gaussian_kde`` except for the covariance: Ledoit-Wolf shrinkage (plus a small
    floor) keeps it positive definite when points are fewer than dimensions, a direction is
    constant or points repeat, all of which small cohorts give; where the points are many and
    spread, the shrinkage is negligible and the two agree.
    """

    FLOOR = 1e-3  # variance added per dimension, in units of the (whitened) space the points live in

    def __init__(self, points: np.ndarray):
        n, d = points.shape
        if n < 2:
            raise NotEstimable(f"a density needs at least 2 windows, got {n}")
        covariance = LedoitWolf().fit(points).covariance_ + self.FLOOR * np.eye(d)
        self.cholesky = np.linalg.cholesky(covariance) * n ** (-1 / (d + 4))  # Scott's factor, as gaussian_kde
        self.log_det = float(np.log(np.diag(self.cholesky)).sum())
        self.kde = KernelDensity(bandwidth=1.0).fit(self.whiten(points))

    def whiten(self, points: np.ndarray) -> np.ndarray:
        return solve_triangular(self.cholesky, points.T, lower=True).T

    def logpdf(self, points: np.ndarray) -> np.ndarray:
        return self.kde.score_samples(self.whiten(points)) - self.log_det


def domias_attack(
    scored: np.ndarray,
    fold: np.ndarray,
    reference: np.ndarray,
    reference_fold: np.ndarray,
    synthetic: np.ndarray,
    dimensions: int,
) -> np.ndarray:
    """log p_synthetic - log p_reference, cross-fitted: rows of fold k are scored against a reference
    density built from the reference rows of every other fold, so a reference person never scores
    themselves. Densities live in the leading principal components of the synthetic data (the
    released data, so an attacker has it too), whitened so that each has unit synthetic variance;
    components the synthetic data does not vary along are left out."""
    pca = PCA(n_components=min(dimensions, synthetic.shape[1], len(synthetic) - 1), whiten=True).fit(synthetic)
    varying = pca.explained_variance_ > max(1e-9 * synthetic.var(axis=0).sum(), 1e-12)  # features lie in [0, 1]
    if not varying.any():
        raise NotEstimable("the synthetic windows do not vary, so there is no synthetic density to compare")

    def project(rows: np.ndarray) -> np.ndarray:
        return pca.transform(rows)[:, varying]

    synthetic_density = GaussianDensity(project(synthetic))
    scores = np.empty(len(scored))
    for k in np.unique(fold):
        reference_density = GaussianDensity(project(reference[reference_fold != k]))
        points = project(scored[fold == k])
        scores[fold == k] = synthetic_density.logpdf(points) - reference_density.logpdf(points)
    return scores


def likelihood_attack(
    model: SynthesisModel, values: np.ndarray, starts: np.ndarray | None = None, attributes: np.ndarray | None = None
) -> np.ndarray:
    """Mean log-probability the generator gives each window's observed bins (higher = member);
    ``starts`` and ``attributes``: the windows' first days and persons' attribute codes, which a model
    with covariates is told (an attacker who knows a person's records knows them too)."""
    tokens, _ = model.tokenize(values)
    total, count = np.zeros(len(values)), np.zeros(len(values))
    for c, probabilities in enumerate(model.next_day_probabilities(values, starts, attributes)):
        observed = tokens[..., c] >= 0
        chosen = np.take_along_axis(probabilities, np.maximum(tokens[..., c], 0)[..., None], -1)[..., 0]
        total += np.where(observed, np.log(np.maximum(chosen, 1e-12)), 0).sum(axis=1)
        count += observed.sum(axis=1)
    return total / np.maximum(count, 1)


def near_copy_share(
    synthetic: np.ndarray, train: np.ndarray, holdout: np.ndarray, percentile: float
) -> dict[str, float]:
    """Share of synthetic windows closer to a training window than ``percentile`` % of holdout
    windows are: a generator whose windows are as novel as a new person's scores about
    ``percentile`` %, one that copies training windows scores far more."""
    threshold = float(np.percentile(closest_distance(holdout, train), percentile))
    return {
        "share": float((closest_distance(synthetic, train) < threshold).mean()),
        "threshold": threshold,
        "percentile": percentile,
        "synthetic_windows": len(synthetic),
    }
