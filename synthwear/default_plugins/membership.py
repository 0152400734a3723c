"""Membership inference: can an attacker tell the training persons from persons never trained on?

Members are the training persons (``context.train``), non-members the holdout persons
(``context.holdout``); the unit is the person, so window scores are averaged per person. The
DOMIAS reference density needs real persons that are neither members nor the person being scored:
the holdout persons are split into folds and each fold is scored against the others (members are
spread over the same folds, so both groups meet the same reference densities). The report shows
the attacks beside what the run's formal guarantee, if any, allows (TPR <= e^eps FPR + delta).
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

import numpy as np
import pandas as pd
from sdmetrics.single_table import DCROverfittingProtection

from synthwear.default_plugins.membership_attacks import (
    distance_attack,
    domias_attack,
    likelihood_attack,
    near_copy_share,
    window_features,
)
from synthwear.default_plugins.membership_metrics import FPR_TARGETS, evaluate_attack, guarantee_bounds, person_scores
from synthwear.errors import NotEstimable
from synthwear.hookspecs import hookimpl
from synthwear.interfaces import EvaluationContext
from synthwear.report.html import table

ATTACKS = {
    "distance_to_closest_synthetic": "distance to closest synthetic window",
    "domias_density_ratio": "DOMIAS density ratio",
    "white_box_likelihood": "white-box likelihood",
}


@dataclass
class MembershipConfig:
    bootstrap: int = 500  # person resamples for the confidence intervals
    near_copy_percentile: float = 5.0  # "near copy": closer to a training window than this % of holdout windows are
    domias_dimensions: int = 5  # principal components the DOMIAS densities are estimated in
    reference_folds: int = 5  # holdout folds for the DOMIAS cross-fitted reference density
    dcr_draws: int = 10  # training-side draws sdmetrics' DCR score is averaged over; 0 leaves the score out


def person_folds(persons: np.ndarray, folds: int, rng: np.random.Generator) -> np.ndarray:
    """A fold per window, the same for all windows of a person; persons dealt round-robin in random order."""
    unique, index = np.unique(persons, return_inverse=True)
    return (rng.permutation(len(unique)) % folds)[index]


def dcr_overfitting_protection(
    train: np.ndarray,
    train_persons: np.ndarray,
    synthetic: np.ndarray,
    holdout: np.ndarray,
    holdout_persons: np.ndarray,
    rng: np.random.Generator,
    draws: int = 10,
) -> dict[str, float]:
    """sdmetrics' score (1 = synthetic windows are no closer to training than to holdout windows).

    The training side is cut to as many persons and windows as the holdout has: with more
    candidates, or more persons' spread (sdmetrics scales distances by each side's observed
    range), "closer to training" would win for no reason but numbers. Which persons are drawn
    moves the result a lot on small cohorts, so it is averaged over ``draws`` draws.
    """
    columns = [f"f{i}" for i in range(train.shape[1])]
    metadata = {"columns": {name: {"sdtype": "numerical"} for name in columns}}
    persons = np.unique(train_persons)
    n_persons, n_windows = min(len(np.unique(holdout_persons)), len(persons)), len(holdout)
    totals = np.zeros(3)
    for _ in range(draws):
        drawn = train[np.isin(train_persons, rng.choice(persons, n_persons, replace=False))]
        drawn = drawn[rng.choice(len(drawn), min(len(drawn), n_windows), replace=False)]
        breakdown = DCROverfittingProtection.compute_breakdown(
            real_training_data=pd.DataFrame(drawn, columns=columns),
            synthetic_data=pd.DataFrame(synthetic, columns=columns),
            real_validation_data=pd.DataFrame(holdout, columns=columns),
            metadata=metadata,
            table_name=None,
        )
        shares = breakdown["synthetic_data_percentages"]
        totals += [breakdown["score"], shares["closer_to_training"], shares["closer_to_holdout"]]
    score, closer_to_training, closer_to_holdout = (totals / draws).tolist()
    return {
        "score": score,
        "closer_to_training": closer_to_training,
        "closer_to_holdout": closer_to_holdout,
        "draws": draws,
    }


class MembershipInference:
    """Three attacks on the training persons, near-copies and sdmetrics' DCR score, per person with CIs."""

    def __init__(self, config: MembershipConfig = MembershipConfig()):
        if config.reference_folds < 2:
            raise ValueError(f"membership reference_folds must be at least 2, got {config.reference_folds}")
        self.config = config

    def evaluate(self, context: EvaluationContext) -> dict[str, Any]:
        ranges = context.model.ranges
        train, holdout, synthetic = (
            window_features(w.values, ranges) for w in (context.train, context.holdout, context.synthetic)
        )
        n_holdout_persons = len(np.unique(context.holdout.person))
        if n_holdout_persons < 2:
            raise NotEstimable(
                f"membership inference needs at least 2 holdout persons (non-members), got {n_holdout_persons}"
            )
        rng = np.random.default_rng(context.seed)
        folds = min(self.config.reference_folds, n_holdout_persons)
        train_fold = person_folds(context.train.person, folds, rng)
        holdout_fold = person_folds(context.holdout.person, folds, rng)
        real = np.concatenate([train, holdout])
        all_real = np.concatenate([context.train.values, context.holdout.values])
        real_starts, real_attributes = (real_windows_field(context, key) for key in ("start", "attributes"))
        window_scores = {
            "distance_to_closest_synthetic": lambda: distance_attack(real, synthetic),
            "domias_density_ratio": lambda: domias_attack(
                real,
                np.concatenate([train_fold, holdout_fold]),
                holdout,
                holdout_fold,
                synthetic,
                self.config.domias_dimensions,
            ),
            "white_box_likelihood": lambda: likelihood_attack(context.model, all_real, real_starts, real_attributes),
        }
        attacks = {}
        for name, attack in window_scores.items():
            try:
                scores = attack()
            except NotEstimable as reason:
                attacks[name] = {"unavailable": str(reason)}
                continue
            attacks[name] = evaluate_attack(
                person_scores(scores[: len(train)], context.train.person),
                person_scores(scores[len(train) :], context.holdout.person),
                bootstrap=self.config.bootstrap,
                seed=context.seed,
            )
        privacy = context.extras.get("privacy")
        return {
            "attacks": attacks,
            "dcr_overfitting_protection": dcr_overfitting_protection(
                train, context.train.person, synthetic, holdout, context.holdout.person, rng, self.config.dcr_draws
            )
            if self.config.dcr_draws
            else None,
            "near_copies": near_copy_share(synthetic, train, holdout, self.config.near_copy_percentile),
            "guarantee": guarantee_bounds(privacy["epsilon"], privacy["delta"]) if privacy else None,
            "windows": {"members": len(train), "non_members": len(holdout), "synthetic": len(synthetic)},
            "persons": {"members": len(np.unique(context.train.person)), "non_members": n_holdout_persons},
            "bootstrap": self.config.bootstrap,
        }

    @staticmethod
    def report_section(results: dict[str, Any], run: dict[str, Any]) -> str:
        """The "Privacy" section: the formal guarantee, then the attacks beside what it allows."""
        return "<h2>Privacy</h2>" + guarantee_html(run.get("privacy")) + attacks_html(results, run.get("split", {}))


def with_ci(value: float, ci: list[float]) -> str:
    return f"{value:.2f} <small>[{ci[0]:.2f}, {ci[1]:.2f}]</small>"


def processes_text(processes: int) -> str:
    return "1" if processes == 1 else f"{processes} (torchrun; the noise was added once, on rank 0)"


def guarantee_html(privacy: dict[str, Any] | None) -> str:
    if not privacy:
        return (
            "<p><b>No formal guarantee</b>: this model was trained without differential privacy. "
            "Only the attacks below speak to its privacy.</p>"
        )
    rows = [
        ("unit", privacy["unit"]),
        ("sampling", privacy["sampling"]),
        ("ε spent (target)", f"{privacy['epsilon']:.3f} ({privacy['target_epsilon']:g})"),
        ("δ", f"{privacy['delta']:.2e} ({privacy['delta_source']})"),
        ("accountant", privacy["accountant"]),
        ("noise multiplier", f"{privacy['noise_multiplier']:.3f}"),
        ("sampling rate q", f"{privacy['sample_rate']:g}"),
        ("steps", f"{privacy['steps']:,}"),
        ("clipping norm", f"{privacy['max_grad_norm']:g}"),
        ("frozen parameters", ", ".join(privacy["frozen_parameters"]) or "none"),
        ("values trained under DP", f"{privacy['trained_values']:,}" if "trained_values" in privacy else "all"),
        ("checkpoints validation chose among", f"{privacy['checkpoints']} (validation persons are not covered)"),
        ("training processes", processes_text(privacy.get("processes", 1))),
    ]  # runs before torchrun DP lack the key
    return "<p>Trained with person-level DP-SGD (Opacus).</p>" + table(
        ["guarantee", ""], [[escape(k), escape(str(v))] for k, v in rows]
    )


def counted(scored: int, split: int | None, who: str) -> str:
    """ "47 training persons", or where the evaluated windows (a subsample) miss some of the split's
    persons, "45 of the 47 training persons": the same count the training section shows."""
    return (
        f"{scored} {who}"
        if split in (None, scored)
        else f"{scored} of the {split} {who} (those with evaluated windows)"
    )


def attacks_html(results: dict[str, Any], split: dict[str, Any]) -> str:
    bound = results.get("guarantee")
    headers = ["attack", "ROC AUC [95% CI]"]
    for target in FPR_TARGETS.values():
        headers += [f"TPR at FPR {target:.0%} [95% CI]"] + (["allowed by ε, δ"] if bound else [])
    rows = []
    for name, label in ATTACKS.items():
        attack = results["attacks"][name]
        if "unavailable" in attack:
            rows.append(
                [
                    escape(label),
                    f"<span class='failed'>could not be computed, because {escape(attack['unavailable'])}</span>",
                ]
            )
            continue
        cells = [escape(label), with_ci(attack["auc"], attack["auc_ci"])]
        for fpr in FPR_TARGETS:
            cells.append(with_ci(attack[f"tpr_at_fpr_{fpr}"], attack[f"tpr_at_fpr_{fpr}_ci"]))
            if bound:
                cells.append(f"{bound[f'tpr_at_fpr_{fpr}']:.3f}")
        rows.append(cells)
    if bound:
        rows.append(
            [f"<i>most any attack can reach under ε = {bound['epsilon']:.2f}</i>", f"{bound['auc']:.2f}"]
            + [cell for name in FPR_TARGETS for cell in ("", f"{bound[f'tpr_at_fpr_{name}']:.3f}")]
        )
    first = results.get("persons") or next(iter(results["attacks"].values()))  # runs before "persons" was kept
    dcr, copies = results["dcr_overfitting_protection"], results["near_copies"]
    dcr_text = (
        "<p>sdmetrics DCROverfittingProtection: not computed (dcr_draws: 0).</p>"
        if dcr is None
        else f"<p>sdmetrics DCROverfittingProtection: <b>{dcr['score']:.2f}</b> (1 = synthetic windows are no closer "
        f"to training than to holdout windows; {dcr['closer_to_training']:.0%} closer to training, "
        f"{dcr['closer_to_holdout']:.0%} to holdout).</p>"
    )
    return (
        f"<h3>Membership-inference attacks</h3><p>{counted(first['members'], split.get('train'), 'training persons')} "
        f"(members) against {counted(first['non_members'], split.get('holdout'), 'holdout persons')} (non-members); window scores averaged per person; an AUC of 0.5 is "
        f"guessing. Intervals: {results['bootstrap']} bootstrap resamples of persons. With {first['non_members']} "
        f"non-members one flagged non-member is an FPR of {1 / first['non_members']:.0%}, so the TPRs at low FPR are "
        f"coarse and can exceed the bound by chance; the intervals say how far.</p>"
        + table(headers, rows)
        + dcr_text
        + f"<p>Near-copies: <b>{copies['share']:.1%}</b> of {copies['synthetic_windows']:,} synthetic windows lie closer "
        f"to a training window than {copies['percentile']:g}% of holdout windows do (RMS distance "
        f"{copies['threshold']:.3f} in range-scaled units); a generator as novel as a new person scores about "
        f"{copies['percentile']:g}%.</p>"
    )


def real_windows_field(context: EvaluationContext, key: str) -> np.ndarray | None:
    """A field of the training then holdout windows (``start``, ``attributes``), where both have it."""
    train, holdout = getattr(context.train, key), getattr(context.holdout, key)
    return None if train is None or holdout is None else np.concatenate([train, holdout])


@hookimpl
def register_evaluators(register):
    register("membership", MembershipInference)
