"""Membership-inference attacks: a generator that copies its training persons must be caught by
every attack; one that never saw them must look like guessing. Plus the metric helpers and the
bound the formal guarantee puts on any attack."""

import numpy as np
import pytest
import torch
from cohorts import CHANNELS, make_daily_frame

from synthwear.default_plugins.membership import MembershipConfig, MembershipInference, person_folds
from synthwear.default_plugins.membership_attacks import window_features
from synthwear.default_plugins.membership_metrics import guarantee_bounds, person_scores, tpr_at_fpr, tpr_bound
from synthwear.interfaces import EvaluationContext, Windows
from synthwear.pipeline import build_model
from synthwear.plugins import default_registry
from synthwear.recipe import load_recipe

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
        self.targets = torch.from_numpy(model.tokenize(windows.values)[0])  # (N, T, C)
        self.inputs = model.shifted_inputs(self.targets)
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
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    scores = np.array([9, 8, 1, 0.5, 7, 6, 5, 4, 3, 2, 0.4, 0.3, 0.2, 0.1])
    assert tpr_at_fpr(labels, scores, 0.0) == 0.5  # the two members above every non-member
    assert tpr_at_fpr(labels, scores, 0.1) == 0.5  # one false positive would be FPR 0.1: still 2 members
    assert tpr_at_fpr(labels, scores, 0.65) == 1.0  # admitting 7 of 10 non-members reaches every member


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
