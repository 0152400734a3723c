"""Membership-inference attacks: a generator that copies its training persons must be caught by
every attack; one that never saw them must look like guessing. Plus the metric helpers and the
bound the formal guarantee puts on any attack."""

import numpy as np
import pytest
import torch
from cohorts import CHANNELS, make_daily_frame
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score, roc_curve

from synthwear.default_plugins.membership import MembershipConfig, MembershipInference, person_folds
from synthwear.default_plugins.membership_attacks import GaussianDensity, domias_attack, window_features
from synthwear.default_plugins.membership_metrics import (
    FPR_TARGETS,
    attack_metrics,
    guarantee_bounds,
    person_scores,
    tpr_at_fpr,
    tpr_bound,
)
from synthwear.errors import NotEstimable
from synthwear.interfaces import EvaluationContext, Windows
from synthwear.plugins import default_registry
from synthwear.recipe import load_recipe
from synthwear.steps import build_model

DAYS = 7


def cohort_windows(persons: int, seed: int, prefix: str) -> Windows:
    """Non-overlapping 7-day windows (4 per person) of a generated cohort."""
    frame = make_daily_frame(persons=persons, days=4 * DAYS, seed=seed, missing=0.05)
    frame["person_id"] = prefix + frame["person_id"]
    full = frame.set_index(["person_id", "date"]).unstack("date").stack("date", future_stack=True)  # gap rows as NaN
    values = full[CHANNELS].to_numpy().reshape(persons, 4, DAYS, len(CHANNELS)).reshape(-1, DAYS, len(CHANNELS))
    return Windows(values, np.repeat(full.index.get_level_values(0).unique().to_numpy(), 4))


class MemorisingGenerator(torch.nn.Module):
    """A generator that has memorised its training windows: wherever the days so far match a
    training window's, it predicts that window's next day; elsewhere every bin is equally likely."""

    def __init__(self, model, windows: Windows):
        super().__init__()
        # (N, T, C) sequences as the attacks feed them: causally, without a summary day to see
        self.inputs, self.targets = model.training_pair(torch.from_numpy(model.tokenize(windows.values)[0]), 1.0)
        self.vocab_sizes = model.spec.vocab_sizes
        self.device_anchor = torch.nn.Parameter(torch.zeros(()))  # SynthesisModel reads its device from a parameter

    def forward(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        days = tokens.size(1)
        same_day = (tokens[:, None] == self.inputs[None, :, :days]).all(dim=-1)  # (B, N, T)
        same_prefix = same_day.long().cumprod(dim=-1).float()
        logits = []
        for c, vocab in enumerate(self.vocab_sizes):
            target = torch.nn.functional.one_hot(self.targets[:, :days, c].clamp(min=0), vocab).float()  # (N, T, V)
            logits.append(torch.log(torch.einsum("bnt,ntv->btv", same_prefix, target) + 1e-3))
        return logits


def tiny_model(tiny_recipe):
    torch.manual_seed(0)
    return build_model(load_recipe(tiny_recipe), default_registry(), torch.device("cpu"))


@pytest.fixture(scope="module")
def members() -> Windows:
    return cohort_windows(24, seed=1, prefix="m")


@pytest.fixture(scope="module")
def non_members() -> Windows:
    return cohort_windows(24, seed=2, prefix="h")


def evaluate(model, members, non_members, synthetic, extras=None) -> dict:
    context = EvaluationContext(model, CHANNELS, members, non_members, synthetic, seed=0, extras=extras or {})
    return MembershipInference(MembershipConfig(bootstrap=100)).evaluate(context)


def test_a_generator_that_copies_its_training_windows_is_caught(tiny_recipe, members, non_members):
    memorising = tiny_model(tiny_recipe)
    memorising.generator = MemorisingGenerator(memorising, members)
    results = evaluate(memorising, members, non_members, Windows(members.values.copy(), members.person))
    for name, attack in results["attacks"].items():
        assert attack["auc"] > 0.85, name
        assert attack["auc_ci"][0] > 0.7, name
    assert results["near_copies"]["share"] > 0.9
    assert results["dcr_overfitting_protection"]["score"] < 0.2


def test_a_generator_that_never_saw_the_members_looks_like_guessing(tiny_recipe, members, non_members):
    results = evaluate(tiny_model(tiny_recipe), members, non_members, cohort_windows(24, seed=4, prefix="s"))
    for name, attack in results["attacks"].items():
        assert attack["auc_ci"][0] < 0.5 < attack["auc_ci"][1], name
    assert results["near_copies"]["share"] < 0.2
    assert results["guarantee"] is None


def test_tpr_at_fpr_takes_the_best_threshold_within_the_fpr():
    members, non_members = np.array([[9, 8, 1, 0.5]]), np.array([[7, 6, 5, 4, 3, 2, 0.4, 0.3, 0.2, 0.1]])
    assert tpr_at_fpr(members, non_members, 0.0) == 0.5  # the two members above every non-member
    assert tpr_at_fpr(members, non_members, 0.1) == 0.5  # one false positive would be FPR 0.1: still 2 members
    assert tpr_at_fpr(members, non_members, 0.65) == 1.0  # admitting 7 of 10 non-members reaches every member


@settings(max_examples=200, deadline=None)
@given(
    members=st.lists(st.integers(0, 6), min_size=1, max_size=12),
    non_members=st.lists(st.integers(0, 6), min_size=1, max_size=30),
)
def test_batched_metrics_agree_with_scikit_learn(members, non_members):
    """The vectorised AUC and TPR at FPR equal scikit-learn's, ties (small integer scores) included."""
    labels = np.r_[np.ones(len(members)), np.zeros(len(non_members))]
    scores = np.r_[members, non_members].astype(float)
    ours = attack_metrics(np.array([members], float), np.array([non_members], float))
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    if len(set(labels)) == 2:
        assert ours["auc"][0] == pytest.approx(roc_auc_score(labels, scores))
    for name, target in FPR_TARGETS.items():
        assert ours[f"tpr_at_fpr_{name}"][0] == pytest.approx(tpr[np.searchsorted(fpr, target, side="right") - 1])


def test_window_scores_are_averaged_per_person():
    np.testing.assert_allclose(person_scores(np.array([1.0, 3.0, 10.0]), np.array(["b", "b", "a"])), [10.0, 2.0])


def test_folds_keep_each_persons_windows_together():
    persons = np.repeat([f"p{i}" for i in range(10)], 3)
    folds = person_folds(persons, 5, np.random.default_rng(0))
    assert all(len(set(folds[persons == p])) == 1 for p in np.unique(persons))
    assert sorted(np.bincount(folds[::3])) == [2, 2, 2, 2, 2]


def test_features_use_public_ranges_and_fill_gaps_within_the_window():
    values = np.array([[[75.0, np.nan], [95.0, np.nan], [np.nan, np.nan]]])
    features = window_features(values, [(35.0, 115.0), (0.0, 960.0)]).reshape(3, 2)
    np.testing.assert_allclose(features[:, 0], [0.5, 0.75, 0.625])  # gap: the window's own mean
    np.testing.assert_allclose(features[:, 1], [0.5, 0.5, 0.5])  # channel missing all window: mid-range


def test_the_guarantee_bounds_any_attack():
    assert guarantee_bounds(0.0, 0.0)["auc"] == pytest.approx(0.5, abs=1e-3)  # no better than guessing
    np.testing.assert_allclose(tpr_bound(0.01, 1.0, 1e-5), np.e * 0.01 + 1e-5)
    tight, loose = guarantee_bounds(1.0, 1e-5), guarantee_bounds(8.0, 1e-5)
    assert tight["tpr_at_fpr_10pct"] < loose["tpr_at_fpr_10pct"] and tight["auc"] < loose["auc"] <= 1.0


def test_report_section_shows_the_guarantee_beside_the_attacks(tiny_recipe, members, non_members):
    model = tiny_model(tiny_recipe)
    privacy = {
        "epsilon": 2.98,
        "delta": 1e-3,
        "target_epsilon": 3.0,
        "delta_source": "recipe",
        "accountant": "prv",
        "noise_multiplier": 1.2,
        "sample_rate": 0.25,
        "steps": 100,
        "max_grad_norm": 1.0,
        "unit": "person",
        "sampling": "Poisson",
        "frozen_parameters": [],
        "checkpoints": 10,
    }
    results = evaluate(model, members, non_members, cohort_windows(10, seed=4, prefix="s"), extras={"privacy": privacy})
    private = MembershipInference.report_section(results, {"privacy": privacy})
    assert "<h2>Privacy</h2>" in private and "2.980" in private and "allowed by ε, δ" in private
    assert f"{results['guarantee']['tpr_at_fpr_1pct']:.3f}" in private
    assert "<td>training processes</td><td>1</td>" in private  # a run.json from before torchrun DP
    under_torchrun = MembershipInference.report_section(results, {"privacy": {**privacy, "processes": 2}})
    assert "<td>training processes</td><td>2 (torchrun; the noise was added once, on rank 0)</td>" in under_torchrun
    public = MembershipInference.report_section({**results, "guarantee": None}, {})
    assert "No formal guarantee" in public and "allowed by" not in public
    members_scored = results["persons"]["members"]
    assert f"<p>{members_scored} training persons (members)" in public
    split = {"split": {"train": members_scored + 2, "holdout": results["persons"]["non_members"]}}
    subsampled = MembershipInference.report_section(results, split)  # the count the training section shows
    assert f"{members_scored} of the {members_scored + 2} training persons (those with evaluated windows)" in subsampled
    assert "<td>values trained under DP</td><td>all</td>" in private  # a run.json from before base fine-tuning
    tuned = MembershipInference.report_section(results, {"privacy": {**privacy, "trained_values": 2527}})
    assert "<td>values trained under DP</td><td>2,527</td>" in tuned


def test_sdmetrics_dcr_score_can_be_left_out(tiny_recipe, members, non_members):
    context = EvaluationContext(tiny_model(tiny_recipe), CHANNELS, members, non_members, members, seed=0)
    results = MembershipInference(MembershipConfig(bootstrap=50, dcr_draws=0)).evaluate(context)
    assert results["dcr_overfitting_protection"] is None and results["attacks"]["white_box_likelihood"]["auc"] > 0
    assert "DCROverfittingProtection: not computed" in MembershipInference.report_section(results, {})


def test_density_agrees_with_gaussian_kde_where_that_is_well_posed():
    from scipy.stats import gaussian_kde, spearmanr

    rng = np.random.default_rng(0)
    points, queries = rng.normal(size=(2000, 5)), rng.normal(size=(300, 5))
    ours, scipy_kde = GaussianDensity(points).logpdf(queries), gaussian_kde(points.T).logpdf(queries.T)
    assert np.median(np.abs(ours - scipy_kde)) < 0.05 and spearmanr(ours, scipy_kde)[0] > 0.999


@pytest.mark.parametrize(
    "points",
    [
        np.random.default_rng(1).normal(size=(3, 5)),  # fewer windows than dimensions
        np.c_[np.random.default_rng(2).normal(size=(40, 4)), np.full(40, 0.7)],  # one constant direction
        np.repeat(np.random.default_rng(3).normal(size=(2, 5)), 10, axis=0),  # repeated windows
    ],
)
def test_density_is_finite_on_degenerate_small_data(points):
    values = GaussianDensity(points).logpdf(np.random.default_rng(4).normal(size=(20, 5)))
    assert np.isfinite(values).all()


def test_domias_scores_few_windows_and_states_why_it_cannot():
    rng = np.random.default_rng(0)
    synthetic, real = rng.random((100, 42)), rng.random((12, 42))
    fold = np.repeat([0, 1, 2], 4)
    scores = domias_attack(real, fold, real, fold, synthetic, dimensions=5)  # references of 8 windows in 5-D
    assert np.isfinite(scores).all()
    with pytest.raises(NotEstimable, match="do not vary"):
        domias_attack(real, fold, real, fold, np.full((100, 42), 0.3), dimensions=5)
    with pytest.raises(NotEstimable, match="at least 2 windows"):
        domias_attack(real[:2], np.array([0, 1]), real[:2], np.array([0, 1]), synthetic, dimensions=5)
