"""Fine-tuning from a base model: what comes from the base, what is trained, what is refused."""

from __future__ import annotations

import copy

import pytest
import torch
from cohorts import REPO

from synthwear import Synthesizer
from synthwear.bases import shipped_bases
from synthwear.errors import SynthwearError
from synthwear.recipe import load_recipe, parse_recipe

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
    assert set(after) == set(base)  # three channels each, and no adapter left: the plain transformer
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
