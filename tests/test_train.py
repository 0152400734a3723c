"""Distributed training: shards, DDP with two gloo processes, and the torchrun entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from cohorts import REPO
from gloo import assert_same_weights, on_gloo_ranks

from synthwear.errors import SynthwearError
from synthwear.model import SynthesisModel
from synthwear.plugins import default_registry
from synthwear.recipe import load_recipe
from synthwear.shard import Shard
from synthwear.steps import build_model
from synthwear.train import WeightAverage, WindowTokens, train_model, validation_loss, window_tokens


def tiny_setup(weights_seed: int = 0) -> tuple[SynthesisModel, object, WindowTokens, WindowTokens, object]:
    """The tiny recipe's model and loss over generated tokens (the same for every weights_seed):
    30 training and 9 validation windows."""
    recipe = load_recipe(REPO / "recipes" / "tiny.yaml")
    registry = default_registry()
    torch.manual_seed(weights_seed)
    model = build_model(recipe, registry, torch.device("cpu"))
    loss = registry.build("losses", recipe.loss.name, recipe.loss.options)
    rng = np.random.default_rng(0)
    days, vocab = recipe.windows.days, model.spec.vocab_sizes[0]
    tokens = rng.integers(0, vocab, (60, len(model.channels)))
    tokens[rng.random(tokens.shape) < 0.1] = -1
    train = window_tokens(tokens[:45], np.arange(30), days)
    validation = window_tokens(tokens[45:], np.arange(9), days)
    return model, loss, train, validation, recipe.training


def train_rank(rank: int) -> dict:
    """One DDP process: train the tiny model on its shard; what it ended with."""
    model, loss, train, validation, config = tiny_setup(weights_seed=rank)  # DDP must start both from rank 0's weights
    result = train_model(model, loss, train, validation, config.model_copy(update={"epochs": 3, "patience": 3}), seed=5)
    return {"state": model.generator.state_dict(), "history": result.history}


def test_two_gloo_processes_end_with_the_same_trained_weights(tmp_path):
    ranks = on_gloo_ranks(train_rank, tmp_path)
    assert_same_weights(ranks)
    assert ranks[0]["history"] == ranks[1]["history"]  # early stopping saw the same losses everywhere
    model, loss, _, validation, _ = tiny_setup(weights_seed=0)
    untrained = {k: v.clone() for k, v in model.generator.state_dict().items()}
    assert any(not torch.equal(untrained[k], v) for k, v in ranks[0]["state"].items())
    # the loss combined over the two ranks' halves is (up to how the halves' means weigh their
    # observed cells) the loss of the whole validation set, not of a half or of a double count
    model.generator.load_state_dict(ranks[0]["state"])
    best = min(record["validation_loss"] for record in ranks[0]["history"])
    assert validation_loss(model, loss, validation, batch_size=9) == pytest.approx(best, rel=0.05)


@pytest.mark.parametrize(
    "privacy",
    [None, {"target_epsilon": 4.0, "sample_rate": 0.5, "steps": 4, "checkpoints": 2}],
    ids=["plain", "dp-sgd"],
)
def test_torchrun_runs_a_recipe_and_only_rank_0_writes_the_run_folder(tmp_path, privacy):
    raw = yaml.safe_load((REPO / "recipes" / "tiny.yaml").read_text())
    raw["evaluation"]["evaluators"] = [{"name": "forecast"}]  # the run, not the evaluators, is under test
    if privacy:
        raw["privacy"] = privacy
    recipe_file = tmp_path / "tiny.yaml"
    recipe_file.write_text(yaml.safe_dump(raw))
    out = tmp_path / "runs" / "tiny"
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(scratch)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "synthwear.distributed",
            str(recipe_file),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["tiny"]
    assert not list(scratch.glob("synthwear-rank*"))  # rank 1's discarded run folder is gone
    run = json.loads((out / "run.json").read_text())
    assert run["training"]["epochs"] >= 1
    if privacy:  # Opacus' distributed DP-SGD, accounted once for the whole run
        assert run["privacy"]["processes"] == 2 and 3.9 <= run["privacy"]["epsilon"] <= 4.0
        assert run["privacy"]["steps"] == 4
    model = SynthesisModel.load(out / "model", default_registry())
    assert model.generate(3, 5, seed=1).shape == (3, 5, 3)


def test_the_entry_point_refuses_to_run_outside_torchrun(monkeypatch):
    from synthwear.distributed import main

    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(SystemExit, match="must be started by torchrun"):
        main([str(REPO / "recipes" / "tiny.yaml")])


@pytest.mark.parametrize("precision, compute_dtype", [("float32", torch.float32), ("bfloat16", torch.bfloat16)])
def test_training_precision_sets_the_compute_type_and_the_weights_stay_float32(precision, compute_dtype):
    model, loss, _, _, config = tiny_setup()
    days = 7  # the tiny recipe's window
    tokens = np.stack([np.arange(80) % 5] * len(model.channels), axis=1)  # a rhythm any model can learn
    train, validation = window_tokens(tokens, np.arange(60), days), window_tokens(tokens, np.arange(60, 73), days)
    seen = []
    model.generator.register_forward_hook(
        lambda module, args, output: seen.append(output[0].dtype) if module.training else None
    )
    untrained = validation_loss(model, loss, validation, batch_size=13)
    result = train_model(
        model,
        loss,
        train,
        validation,
        config.model_copy(
            update={"epochs": 15, "patience": 15, "batch_size": 10, "learning_rate": 0.01, "precision": precision}
        ),
        seed=0,
    )
    assert set(seen) == {compute_dtype}
    assert all(p.dtype == torch.float32 for p in model.generator.parameters())
    assert result.best_validation_loss < 0.5 * untrained


def test_a_device_this_machine_lacks_is_refused():
    from synthwear.train import resolve_device

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(SynthwearError, match="training.device 'cuda:7'"):
        resolve_device("cuda:7" if count < 8 else "cuda:99")
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(SynthwearError, match="device 'gpu': not one of auto, cpu, cuda, cuda:N, mps"):
        resolve_device("gpu")  # torch's own error lists twenty device types, over several lines
    for unparsed in ("cuda:01", "cuda:99999999999999999999", "cuda:\u0661"):  # torch refuses these indexes
        with pytest.raises(SynthwearError, match="not one of auto, cpu, cuda, cuda:N, mps"):
            resolve_device(unparsed)


def test_warm_up_rises_linearly_and_cosine_decays_to_a_tenth():
    from synthwear.recipe import TrainingSection
    from synthwear.train import learning_rate_at

    config = TrainingSection(learning_rate=0.01, warmup_steps=4, schedule="cosine")
    assert [learning_rate_at(s, config, 104) for s in range(4)] == pytest.approx([0.0025, 0.005, 0.0075, 0.01])
    assert learning_rate_at(54, config, 104) == pytest.approx(0.01 * 0.55)  # half way: the middle of 1 and 0.1
    assert learning_rate_at(104, config, 104) == pytest.approx(0.001)
    assert learning_rate_at(500, config, 104) == pytest.approx(0.001)  # past the end it stays at the floor
    constant = config.model_copy(update={"schedule": "constant"})
    assert learning_rate_at(80, constant, 104) == 0.01


def test_only_weight_matrices_decay_when_asked():
    from synthwear.train import parameter_groups

    model, _, _, _, config = tiny_setup()
    names = {id(p): n for n, p in model.generator.named_parameters()}
    everything = parameter_groups(model.generator, config)
    assert len(everything) == 1 and len(everything[0]["params"]) == len(names)
    decayed, kept = parameter_groups(model.generator, config.model_copy(update={"weight_decay_on": "matrices"}))
    assert decayed["weight_decay"] == config.weight_decay and kept["weight_decay"] == 0.0
    decayed_names = {names[id(p)] for p in decayed["params"]}
    kept_names = {names[id(p)] for p in kept["params"]}
    assert "position_embedding.weight" in kept_names and "channel_embeddings.0.weight" in kept_names
    assert any(n.endswith("ln_1.weight") for n in kept_names)  # a layer norm's gain
    assert any(n.endswith("c_attn.bias") for n in kept_names)
    assert any(n.endswith("c_attn.weight") for n in decayed_names) and "heads.0.weight" in decayed_names
    assert decayed_names.isdisjoint(kept_names) and len(decayed_names | kept_names) == len(names)


def test_gradient_clipping_bounds_every_step(monkeypatch):
    model, loss, train, validation, config = tiny_setup()
    norms = []
    clip = torch.nn.utils.clip_grad_norm_

    def recording(parameters, max_norm):
        parameters = list(parameters)
        clip(parameters, max_norm)
        norms.append(
            float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in parameters if p.grad is not None])))
        )

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", recording)
    train_model(
        model,
        loss,
        train,
        validation,
        config.model_copy(update={"epochs": 2, "batch_size": 10, "grad_clip": 0.05}),
        seed=0,
    )
    assert len(norms) == 2 * 3  # 30 windows in batches of 10, two epochs
    assert max(norms) <= 0.05 + 1e-6


def test_privacy_refuses_a_second_clipping():
    from synthwear.recipe import parse_recipe

    raw = yaml.safe_load((REPO / "recipes" / "tiny.yaml").read_text())
    raw["privacy"] = {"target_epsilon": 4.0}
    raw["training"]["grad_clip"] = 1.0
    with pytest.raises(SynthwearError, match="training.grad_clip does not apply with privacy"):
        parse_recipe(raw)


def test_refit_trains_the_chosen_epochs_again_on_the_validation_windows_too():
    """The refit starts from the starting weights and learns the validation windows as well: windows
    unlike anything in training (channel 0 always in bin 3) become far more likely than after plain
    training, and it trains exactly the epochs early stopping chose."""
    model, loss, train, validation, config = tiny_setup()
    validation.tokens[:, 0] = 3
    config = config.model_copy(update={"epochs": 4, "patience": 4, "learning_rate": 0.01})
    starting = {k: v.clone() for k, v in model.generator.state_dict().items()}
    plain = train_model(model, loss, train, validation, config, seed=0)
    plain_loss = validation_loss(model, loss, validation, 64, Shard())
    model.generator.load_state_dict(starting)
    both = window_tokens(
        torch.cat([train.tokens, validation.tokens]).numpy(),
        np.concatenate([train.starts.numpy(), validation.starts.numpy() + len(train.tokens)]),
        train.days,
    )
    refitted = train_model(model, loss, train, validation, config, seed=0, refit=both)
    assert refitted.best_epoch == plain.best_epoch > 0  # the first part is the plain training
    assert refitted.refit["epochs"] == plain.best_epoch and refitted.refit["windows"] == 39
    refit_loss = validation_loss(model, loss, validation, 64, Shard())
    assert refit_loss < plain_loss - 0.3, (refit_loss, plain_loss)


def test_privacy_refuses_a_refit():
    from synthwear.recipe import parse_recipe

    raw = yaml.safe_load((REPO / "recipes" / "tiny.yaml").read_text())
    raw["privacy"] = {"target_epsilon": 4.0}
    raw["training"]["refit"] = True
    with pytest.raises(SynthwearError, match="training.refit does not apply with privacy"):
        parse_recipe(raw)


@pytest.mark.parametrize("decay", [0.999, 0.1])
def test_the_weight_average_copies_the_first_step_then_moves_by_its_warming_decay(decay):
    layer = torch.nn.Linear(2, 1, bias=False)
    average = WeightAverage(layer, decay)
    steps = [torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, 0.0]]), torch.tensor([[-1.0, 5.0]])]
    expected = None
    for n, weights in enumerate(steps):
        with torch.no_grad():
            layer.weight.copy_(weights)
        average.update()
        kept = min(decay, (1 + n) / (10 + n))  # n steps averaged before this one
        expected = weights if expected is None else expected + (weights - expected) * (1 - kept)
    assert torch.allclose(average.weights()["weight"], expected)
    assert torch.equal(layer.weight.detach(), steps[-1])  # the live weights are the optimizer's own


def test_with_ema_training_validates_and_keeps_the_averaged_weights(monkeypatch):
    updates = []
    monkeypatch.setattr(WeightAverage, "update", lambda self, update=WeightAverage.update: updates.append(update(self)))
    kept = {}
    for ema in (0.0, 0.999):
        model, loss, train, validation, config = tiny_setup()
        config = config.model_copy(update={"epochs": 2, "patience": 2, "batch_size": 10, "ema": ema})
        result = train_model(model, loss, train, validation, config, seed=0)
        assert validation_loss(model, loss, validation, 64, Shard()) == pytest.approx(result.best_validation_loss)
        kept[ema] = model.generator.state_dict()
    assert len(updates) == 2 * 3  # with ema only: after each optimizer step (30 windows in batches of 10)
    assert any(not torch.equal(kept[0.0][k], kept[0.999][k]) for k in kept[0.0])


def test_privacy_refuses_a_weight_average():
    from synthwear.recipe import parse_recipe

    raw = yaml.safe_load((REPO / "recipes" / "tiny.yaml").read_text())
    raw["training"]["ema"] = 1.0
    with pytest.raises(SynthwearError, match="ema"):
        parse_recipe(raw)
    raw["training"]["ema"] = 0.999
    raw["privacy"] = {"target_epsilon": 4.0}
    with pytest.raises(SynthwearError, match="training.ema does not apply with privacy"):
        parse_recipe(raw)
