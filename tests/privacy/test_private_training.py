"""DP-SGD training: per-sample gradients really are per window, the budget is spent exactly at the
last step, the accounting is per person, and a private recipe runs end to end."""

import dataclasses
import json

import pytest
import torch
from cohorts import CHANNELS, REPO, make_daily_frame
from gloo import assert_same_weights, on_gloo_ranks
from opacus import GradSampleModule
from opacus.accountants import RDPAccountant
from opacus.validators import ModuleValidator

from synthwear.cohort import Cohort
from synthwear.errors import SynthwearError
from synthwear.pipeline import run_recipe
from synthwear.plugins import default_registry
from synthwear.privacy import train_private
from synthwear.privacy.accounting import calibrate_noise
from synthwear.privacy.compatibility import freeze_unbatched_parameters
from synthwear.privacy.sampling import PersonWindows
from synthwear.privacy.training import make_private, per_window_loss
from synthwear.recipe import PrivacySection, TrainingSection, load_recipe, parse_recipe
from synthwear.shard import Shard
from synthwear.steps import build_model
from synthwear.train import window_tokens

DAYS = 7


def tiny_model(weights_seed: int = 0, **options):
    torch.manual_seed(weights_seed)
    recipe = load_recipe(REPO / "recipes" / "tiny.yaml")
    recipe.generator.model_extra.update(dropout=0.0, **options)  # no dropout: a window's gradient can be recomputed
    return build_model(recipe, default_registry(), torch.device("cpu"))


@pytest.fixture
def model():
    return tiny_model()


def cohort_windows(model, persons: int):
    cohort = Cohort.from_frame(make_daily_frame(persons=persons, days=24, seed=5), CHANNELS)
    starts = cohort.window_starts(DAYS, 1, 0.5)
    return window_tokens(model.tokenize(cohort.values)[0], starts, DAYS), cohort.person_of(starts)


@pytest.mark.parametrize("chain", [False, True])  # chained: the heads also read the same day's earlier channels
def test_per_sample_gradients_are_each_windows_own(chain):
    model = tiny_model(chain=chain)
    windows, _ = cohort_windows(model, 4)
    targets = windows.batch(torch.arange(5))
    loss = default_registry().build("losses", "mean", {})
    ModuleValidator.validate(model.generator, strict=True)  # raises on any layer Opacus cannot handle
    # every layer's input carries the batch; chained, no channel reads the last channel's same-day embedding
    unread = ["chain_embeddings.2.weight", "chain_ordinal_embeddings.2.projection.weight"] if chain else []
    assert freeze_unbatched_parameters(model) == unread
    wrapped = GradSampleModule(model.generator, batch_first=True, loss_reduction="mean")
    per_window_loss(loss, model.predict(wrapped, model.shifted_inputs(targets), targets), targets).backward()
    trainable = [(name, p) for name, p in model.generator.named_parameters() if p.requires_grad]
    assert chain == any(name.startswith("chain_") for name, _ in trainable)
    per_sample = {name: p.grad_sample.clone() for name, p in trainable}
    wrapped.cleanup()
    for i in range(len(targets)):
        alone = targets[i : i + 1]
        logits = model.predict(model.generator, model.shifted_inputs(alone), alone)
        grads = torch.autograd.grad(loss(logits, alone, training=True), [p for _, p in trainable])
        for (name, _), grad in zip(trainable, grads):
            torch.testing.assert_close(per_sample[name][i], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_training_spends_exactly_the_budget_per_person(model):
    windows, persons = cohort_windows(model, 10)
    assert len(windows) > 10 * 5  # many windows per person: the accounting must not count them
    privacy = PrivacySection(target_epsilon=2.0, accountant="rdp", sample_rate=0.5, steps=6, checkpoints=3)
    before = {name: p.detach().clone() for name, p in model.generator.named_parameters()}
    loss = default_registry().build("losses", "shake_shake", {})
    result, accounting = train_private(model, loss, windows, persons, windows, TrainingSection(), privacy, seed=0)
    assert accounting.steps == 6 and accounting.train_persons == 10 and accounting.sample_rate == 0.5
    assert accounting.delta == pytest.approx(1 / (10 * 10))
    assert accounting.noise_multiplier == calibrate_noise(privacy, accounting.delta)
    independent = RDPAccountant()
    independent.history = [(accounting.noise_multiplier, 0.5, 6)]
    assert accounting.epsilon == pytest.approx(independent.get_epsilon(accounting.delta))
    assert 1.95 <= accounting.epsilon <= 2.0  # the whole budget, and no more
    assert [r["step"] for r in result.history] == [2, 4, 6]  # evenly spaced checkpoints
    assert "budget spent" in result.stopped
    after = dict(model.generator.named_parameters())
    for name in ("position_embedding.weight", "heads.0.weight", "channel_embeddings.0.weight"):
        assert not torch.equal(after[name], before[name]), name


def train_six_private_steps(model):
    """Six noisy steps on 10 persons' windows at epsilon 2 (rdp), seed 0: the result and the accounting."""
    windows, persons = cohort_windows(model, 10)
    privacy = PrivacySection(target_epsilon=2.0, accountant="rdp", sample_rate=0.5, steps=6, checkpoints=3)
    loss = default_registry().build("losses", "shake_shake", {})
    return train_private(model, loss, windows, persons, windows, TrainingSection(), privacy, seed=0)


def train_private_rank(rank: int) -> dict:
    """One torchrun-like process of a private run: its own initial weights, the same windows and seed."""
    model = tiny_model(weights_seed=rank)  # DP-DDP must start every rank from rank 0's weights
    result, accounting = train_six_private_steps(model)
    return {"state": model.generator.state_dict(), "history": result.history, "accounting": accounting.to_dict()}


def test_two_processes_train_privately_to_the_same_weights_under_one_guarantee(tmp_path):
    ranks = on_gloo_ranks(train_private_rank, tmp_path)
    assert_same_weights(ranks)  # the noisy averaged step is the same everywhere
    assert ranks[0]["history"] == ranks[1]["history"]  # so is the checkpoint validation chose
    initial = tiny_model(weights_seed=0).generator.state_dict()
    assert not torch.equal(ranks[0]["state"]["heads.0.weight"], initial["heads.0.weight"])
    shared = ranks[0]["accounting"]
    assert shared == ranks[1]["accounting"] and shared["processes"] == 2
    _, alone = train_six_private_steps(tiny_model())
    assert {k: v for k, v in shared.items() if k != "processes"} == {
        k: v for k, v in alone.to_dict().items() if k != "processes"
    }


def noise_only_gradient(rank: int = 0) -> dict:
    """The gradient one private step applies when every window's own gradient is zero: the noise
    alone, as scaled for the expected batch of 10 persons x q 0.5 = 5 (in one process or as a rank)."""
    model = tiny_model()
    windows, persons = cohort_windows(model, 10)
    privacy = PrivacySection(target_epsilon=2.0, sample_rate=0.5, max_grad_norm=1.0)
    dataset = PersonWindows(windows, persons, torch.Generator().manual_seed(rank))
    _, module, optimizer, loader = make_private(
        model, dataset, TrainingSection(), privacy, 1.0, Shard.of_process_group(), seed=0
    )
    targets = next(iter(loader))
    loss = default_registry().build("losses", "mean", {})
    (per_window_loss(loss, module(model.shifted_inputs(targets)), targets) * 0.0).backward()
    optimizer.step()
    module.cleanup()
    return {"grad": torch.cat([p.grad.flatten() for p in model.generator.parameters() if p.grad is not None])}


def test_two_processes_add_the_noise_of_one_process_once(tmp_path):
    alone = noise_only_gradient()["grad"]
    ranks = on_gloo_ranks(noise_only_gradient, tmp_path)
    assert torch.equal(ranks[0]["grad"], ranks[1]["grad"])
    tolerance = 5 / (2 * alone.numel()) ** 0.5  # a sample standard deviation's relative error is ~1/sqrt(2n)
    for grad in (alone, ranks[0]["grad"]):  # noise multiplier 1 x clipping bound 1 / expected batch 5
        assert abs(grad.std().item() / 0.2 - 1) < tolerance  # noise twice would be sqrt(2) x; a per-rank batch, 2x
        assert abs(grad.mean().item()) < 5 * 0.2 / alone.numel() ** 0.5


class UnbatchedPositions(torch.nn.Module):
    """A generator whose position embedding is fed indices without a batch dimension."""

    def __init__(self, spec):
        super().__init__()
        self.positions = torch.nn.Embedding(spec.max_days, 8)
        self.values = torch.nn.Embedding(spec.vocab_sizes[0] + 2, 8)
        self.heads = torch.nn.ModuleList(torch.nn.Linear(8, n) for n in spec.vocab_sizes)

    def forward(self, tokens):
        x = self.positions(torch.arange(tokens.size(1))) + self.values(tokens[:, :, 0])
        return [head(x) for head in self.heads]


def test_parameters_without_per_sample_gradients_are_frozen(model):
    broken = dataclasses.replace(model, generator=UnbatchedPositions(model.spec))
    assert freeze_unbatched_parameters(broken) == ["positions.weight"]
    assert not broken.generator.positions.weight.requires_grad and broken.generator.values.weight.requires_grad


def test_privacy_section_is_checked():
    base = {"name": "x", "data": {"dataset": "lifesnaps"}, "channels": {"steps": {"range": [0, 40000]}}}
    assert parse_recipe(base).privacy is None
    with pytest.raises(SynthwearError, match="privacy.sample_rate"):
        parse_recipe({**base, "privacy": {"target_epsilon": 3, "sample_rate": 0.3}})
    with pytest.raises(SynthwearError, match="unknown key 'privacy.epsilon'"):
        parse_recipe({**base, "privacy": {"target_epsilon": 3, "epsilon": 3}})
    with pytest.raises(SynthwearError, match="privacy.accountant"):
        parse_recipe({**base, "privacy": {"target_epsilon": 3, "accountant": "gdp"}})
    with pytest.raises(
        SynthwearError, match=r"^recipe: training.precision other than float32 does not apply with privacy"
    ):
        parse_recipe({**base, "privacy": {"target_epsilon": 3}, "training": {"precision": "bfloat16"}})


def test_a_private_recipe_records_its_guarantee(tiny_recipe, tmp_path):
    recipe = load_recipe(tiny_recipe).to_dict()
    recipe["privacy"] = {"target_epsilon": 4.0, "sample_rate": 0.5, "steps": 4, "checkpoints": 2}
    recipe["evaluation"]["evaluators"] = [{"name": "membership", "bootstrap": 20}]
    run = run_recipe(parse_recipe(recipe, source=tiny_recipe), tmp_path / "run")
    stored = json.loads((tmp_path / "run" / "run.json").read_text())["privacy"]
    assert stored["epsilon"] <= 4.0 and stored["accountant"] == "prv" and stored["unit"] == "person"
    assert stored["train_persons"] == run.run["split"]["train"]
    assert run.metrics["membership"]["guarantee"]["epsilon"] == stored["epsilon"]


def test_an_unreachable_budget_is_a_one_line_error():
    from synthwear.privacy.accounting import calibrate_noise
    from synthwear.recipe import PrivacySection

    with pytest.raises(SynthwearError, match=r"privacy: target epsilon 0.0001 at delta 1.0e-06 cannot be reached"):
        calibrate_noise(PrivacySection(target_epsilon=1e-4, sample_rate=0.5, steps=10, accountant="rdp"), 1e-6)
