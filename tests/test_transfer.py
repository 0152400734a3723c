"""Fine-tuning from a base model: what comes from the base, what is trained, what is refused."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
import torch
from cohorts import REPO, lifesnaps_cohort

from synthwear import Synthesizer
from synthwear.bases import shipped_bases
from synthwear.cohort import Cohort
from synthwear.covariates import OBSERVED
from synthwear.errors import SynthwearError
from synthwear.interfaces import MISSING
from synthwear.plugins import default_registry
from synthwear.recipe import load_recipe, parse_recipe
from synthwear.steps import build_model
from synthwear.transfer import with_base_defaults, with_latent_drawn

BRIEF = [{"name": "marginals"}]


def tiny() -> dict:
    recipe = load_recipe(REPO / "recipes" / "tiny.yaml").to_dict()
    recipe["evaluation"]["evaluators"] = BRIEF
    return recipe


@pytest.fixture(scope="module")
def base_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("base") / "model"
    Synthesizer(tiny()).fit(progress=False).save(folder)
    return folder


def fine_tuning_recipe(base_folder, train: str = "all", **changes) -> dict:
    """Sleep and steps as in the base, calories new; the architecture left to the base."""
    recipe = tiny()
    del recipe["generator"], recipe["encoder"], recipe["windows"]
    recipe["data"] = {"dataset": "lifesnaps-extended"}
    recipe["channels"] = {
        "sleep_minutes": {"range": [0, 960]},
        "steps": {"range": [0, 40000]},
        "calories": {"range": [0, 6000]},
    }
    recipe["base"] = {"model": str(base_folder), "train": train}
    return recipe | changes


def weights(folder) -> dict[str, torch.Tensor]:
    return Synthesizer.load(folder).fitted.generator.state_dict()


def test_a_base_is_named_by_its_folder_or_shipped_name():
    assert (
        parse_recipe({"name": "x", "channels": {"steps": {"range": [0, 1]}}, "base": "lifesnaps"}).base.train == "all"
    )


def test_heads_fine_tuning_keeps_the_blocks_of_the_base_and_learns_the_new_channel(base_folder, tmp_path):
    tuned = Synthesizer(fine_tuning_recipe(base_folder, "heads")).fit(progress=False)
    tuned.save(tmp_path / "tuned")
    base, after = weights(base_folder), weights(tmp_path / "tuned")
    # the base's channels 1, 2 (sleep, steps) are the model's 0, 1; the blocks are the base's, untouched
    torch.testing.assert_close(after["blocks.0.attn.c_attn.weight"], base["blocks.0.attn.c_attn.weight"])
    torch.testing.assert_close(after["channel_embeddings.0.weight"], base["channel_embeddings.1.weight"])
    assert not torch.equal(after["heads.1.weight"], base["heads.2.weight"])  # a head was trained
    record = tuned.record["base"]
    assert (
        record["train"] == "heads"
        and "heads.2.weight" in record["new"]
        and "channel_embeddings.2.weight" in record["new"]
    )
    assert "channel_embeddings.2.weight" in record["trained"]  # a new channel is trained whatever the choice
    assert 0 < record["trained_values"] < record["total_values"]
    assert tuned.recipe.generator.options["ordinal"] == 4  # the base's architecture, the recipe named none
    assert set(tuned.sample(2, 7, seed=0).columns) == {"person_id", "date", "sleep_minutes", "steps", "calories"}


def test_adapters_change_the_blocks_through_low_rank_updates_and_save_a_plain_model(base_folder, tmp_path):
    tuned = Synthesizer(fine_tuning_recipe(base_folder, "adapters")).fit(progress=False)
    tuned.save(tmp_path / "tuned")
    base, after = weights(base_folder), weights(tmp_path / "tuned")
    # the base's tensors and calories' (resting HR is kept), no adapter left: the plain transformer
    assert set(base) < set(after) and not any(".down." in name or ".up." in name for name in after)
    update = after["blocks.0.mlp.c_fc.weight"] - base["blocks.0.mlp.c_fc.weight"]
    assert 0 < torch.linalg.matrix_rank(update) <= 4  # the rank of the adapter
    assert tuned.record["base"]["rank"] == 4


def test_dp_fine_tuning_records_the_trained_values_and_spends_the_budget(base_folder):
    recipe = fine_tuning_recipe(base_folder, "heads")
    recipe["privacy"] = {"target_epsilon": 3, "steps": 10, "sample_rate": 0.5, "checkpoints": 2, "accountant": "rdp"}
    tuned = Synthesizer(recipe).fit(progress=False)
    privacy, base = tuned.record["privacy"], tuned.record["base"]
    assert 0 < privacy["epsilon"] <= 3 and privacy["trained_values"] <= base["trained_values"]
    # what DP trains is what base.train chose, less what Opacus cannot split per person
    assert privacy["trained_values"] < base["total_values"]


def test_a_shared_channel_binned_otherwise_is_one_line(base_folder):
    recipe = fine_tuning_recipe(base_folder)
    recipe["channels"]["steps"] = {"range": [0, 30000]}
    with pytest.raises(
        SynthwearError, match=r"channels\.steps: range \[0\.0, 30000\.0\].*the base's range \[0\.0, 40000\.0\]"
    ):
        Synthesizer(recipe).fit(progress=False)


def test_another_architecture_named_in_the_recipe_is_refused(base_folder):
    recipe = fine_tuning_recipe(base_folder, generator={"name": "transformer", "n_layer": 2, "n_embd": 16, "n_head": 2})
    with pytest.raises(SynthwearError, match="base: the base's transformer has n_layer 1, this one 2"):
        Synthesizer(recipe).fit(progress=False)


def test_an_unknown_base_names_the_shipped_ones(tmp_path):
    recipe = fine_tuning_recipe(tmp_path / "nowhere")
    with pytest.raises(SynthwearError, match="neither a shipped base .*shipped: lifesnaps"):
        Synthesizer(copy.deepcopy(recipe)).fit(progress=False)


def test_the_shipped_base_has_its_card_and_fine_tunes_on_a_cohort_it_never_saw():
    folder = shipped_bases()["lifesnaps"]
    card = (folder / "MODEL_CARD.md").read_text()
    assert "CC BY 4.0" in card and "Yfantidou" in card and "held-out persons" in card
    recipe = load_recipe(REPO / "recipes" / "fitbit-crowdsourced-dp.yaml").model_dump(mode="json", exclude_unset=True)
    recipe["privacy"] |= {"steps": 4, "checkpoints": 2, "accountant": "rdp"}
    recipe["evaluation"] = {"evaluators": BRIEF}
    tuned = Synthesizer(recipe).fit(progress=False)
    assert tuned.record["base"]["base"] == "lifesnaps" and tuned.record["base"]["new"] == []
    assert tuned.model.channels == ["sleep_minutes", "steps"] and tuned.recipe.windows.summary  # the base's
    assert tuned.record["privacy"]["epsilon"] <= 3


def test_the_base_stays_a_candidate_so_training_that_only_harms_is_not_kept(base_folder, tmp_path):
    recipe = fine_tuning_recipe(base_folder, "heads", channels=tiny()["channels"])  # the base's own channels
    recipe["training"] = {**recipe["training"], "learning_rate": 50.0}  # every step throws the heads away
    tuned = Synthesizer(recipe).fit(progress=False)
    tuned.save(tmp_path / "tuned")
    assert tuned.record["training"]["best_epoch"] == 0
    for name, value in weights(base_folder).items():
        torch.testing.assert_close(weights(tmp_path / "tuned")[name], value)


@pytest.fixture(scope="module")
def base_ending_in_resting_hr(tmp_path_factory):
    """A base whose last channel is resting HR: a model of its other two that keeps it draws in its order."""
    recipe = tiny()
    recipe["channels"] = {name: recipe["channels"][name] for name in ("sleep_minutes", "steps", "resting_hr")}
    folder = tmp_path_factory.mktemp("base-rhr-last") / "model"
    Synthesizer(recipe).fit(progress=False).save(folder)
    return folder


def untrained_tuning(base_folder, keep_channels: bool) -> dict:
    """Sleep and steps only, at a learning rate that only harms: validation keeps the base's weights."""
    recipe = fine_tuning_recipe(base_folder, "all", base={"model": str(base_folder), "keep_channels": keep_channels})
    recipe["data"] = {"dataset": "lifesnaps"}
    recipe["channels"] = {name: tiny()["channels"][name] for name in ("sleep_minutes", "steps")}
    recipe["training"] = {**recipe["training"], "learning_rate": 50.0}
    return recipe


def test_a_kept_channel_is_drawn_as_the_base_draws_it_and_never_written(base_ending_in_resting_hr, tmp_path):
    kept = Synthesizer(untrained_tuning(base_ending_in_resting_hr, True)).fit(progress=False)
    assert kept.model.latent == {"resting_hr": 1.0} and kept.record["base"]["latent"] == ["resting_hr"]
    kept.save(tmp_path / "kept")
    reloaded = Synthesizer.load(tmp_path / "kept")
    base = Synthesizer.load(base_ending_in_resting_hr)
    options = {"seed": 3, "start_date": "2021-06-01"}
    sample = reloaded.sample(6, 7, **options)
    assert list(sample.columns) == ["person_id", "date", "sleep_minutes", "steps"]
    # the base's weights, and resting HR drawn and read as the base does: the base's own sleep and steps
    expected = base.sample(6, 7, **options)[["sleep_minutes", "steps"]]
    meta = json.loads((tmp_path / "kept" / "model.json").read_text())
    (tmp_path / "kept" / "model.json").write_text(json.dumps({**meta, "latent": {}}))  # an edit the weights refuse
    with pytest.raises(SynthwearError, match="model.json: does not match the weights"):
        Synthesizer.load(tmp_path / "kept")
    pd.testing.assert_frame_equal(sample[["sleep_minutes", "steps"]], expected)
    # read as missing instead, the same weights sample other days
    missing = Synthesizer(untrained_tuning(base_ending_in_resting_hr, False)).fit(progress=False)
    assert not missing.sample(6, 7, **options)[["sleep_minutes", "steps"]].equals(expected)


def test_a_kept_channel_keeps_the_base_weights_when_the_rest_is_fine_tuned_with_noise(base_folder, tmp_path):
    recipe = fine_tuning_recipe(base_folder, "biases", base={"model": str(base_folder), "train": "biases"})
    recipe["base"]["keep_channels"] = True
    recipe["privacy"] = {"target_epsilon": 3, "steps": 10, "sample_rate": 0.5, "checkpoints": 2, "accountant": "rdp"}
    tuned = Synthesizer(recipe).fit(progress=False)
    tuned.save(tmp_path / "tuned")
    base, after = weights(base_folder), weights(tmp_path / "tuned")
    # resting HR, the base's channel 0, is the model's fourth (after sleep, steps and the new calories)
    assert tuned.model.modelled == ["sleep_minutes", "steps", "calories", "resting_hr"]
    torch.testing.assert_close(after["heads.3.bias"], base["heads.0.bias"])
    torch.testing.assert_close(after["channel_embeddings.3.weight"], base["channel_embeddings.0.weight"])
    assert not torch.equal(after["heads.0.bias"], base["heads.1.bias"])  # sleep's bias was trained
    assert not any(name.startswith(("heads.3.", "channel_embeddings.3.")) for name in tuned.record["base"]["trained"])


def test_a_kept_channel_is_drawn_every_day_when_the_model_has_gaps_and_the_base_none(base_folder, monkeypatch):
    recipe = untrained_tuning(base_folder, True)
    recipe["windows"] = {"gaps": True}
    tuned = Synthesizer(recipe).fit(progress=False)
    model, drawn = tuned.model, []
    decode = model.decode
    monkeypatch.setattr(model, "decode", lambda tokens, rng: drawn.append(tokens) or decode(tokens, rng))
    values = tuned.sample_array(50, 14, seed=0)
    # ids: sleep, steps, resting HR (latent), then the three "observed" twins
    assert model.scored_names() == ["sleep_minutes", "steps", "resting_hr", *(f"{c} observed" for c in model.modelled)]
    assert (drawn[0][..., 5] == OBSERVED).all() and np.isnan(values).any()  # the data's own channels keep their gaps


def latent_model_and_cohort(base_folder, persons: int):
    """A model of sleep and steps keeping the base's resting HR, and ``persons`` real persons' days."""
    recipe = parse_recipe(untrained_tuning(base_folder, True))
    base = Synthesizer.load(base_folder).fitted
    recipe = with_base_defaults(recipe, base)
    model = build_model(recipe, default_registry(), torch.device("cpu"), base=base)
    frame = lifesnaps_cohort(persons, ["sleep_minutes", "steps"])
    return model, base, Cohort.from_frame(frame, ["sleep_minutes", "steps"])


def test_the_latent_days_are_drawn_for_each_person_from_their_own_days_only(base_ending_in_resting_hr):
    model, base, cohort = latent_model_and_cohort(base_ending_in_resting_hr, 3)
    model.latent = {"resting_hr": 0.0}  # the most likely bin: the draws depend on nothing but the days read
    tokens = model.day_tokens(cohort.values, cohort.dates())[0]
    with_latent_drawn(tokens, model, base, cohort, seed=0)
    drawn = tokens[:, 2]
    assert ((drawn >= 0) & (drawn < base.spec.vocab_sizes[2])).all() and len(np.unique(drawn)) > 1
    alone = cohort.select(np.array([1]))
    own = model.day_tokens(alone.values, alone.dates())[0]
    with_latent_drawn(own, model, base, alone, seed=0)
    np.testing.assert_array_equal(own[:, 2], drawn[cohort.offsets[1] : cohort.offsets[2]])
    # drawn days are read, never scored: the loss sees resting HR as missing on every day
    inputs, targets = model.training_pair(torch.from_numpy(tokens[None, :7]))
    assert (targets[..., 2] == MISSING).all() and (inputs[0, 2:, 2] == torch.from_numpy(drawn[:6])).all()
