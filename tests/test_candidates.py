"""training.candidates: several trainings on one split, the one its validation persons tell apart least kept."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from test_synthesizer import CHANNELS, LIFESNAPS, SMALL

from synthwear import Synthesizer, SynthwearError
from synthwear.candidates import candidate_seed, validation_score
from synthwear.checkpoint import remove_checkpoints
from synthwear.plugins import default_registry
from synthwear.recipe import parse_recipe


def small(**training) -> dict:
    return {**SMALL, "training": {**SMALL["training"], **training}}


@pytest.fixture(scope="module")
def daily() -> pd.DataFrame:
    return pd.read_csv(LIFESNAPS, parse_dates=["date"])


@pytest.fixture(scope="module")
def picked(daily, tmp_path_factory) -> tuple[Synthesizer, object]:
    """Three candidates, each keeping a checkpoint beside a run folder that is not there."""
    checkpoint = tmp_path_factory.mktemp("runs") / ".run.checkpoint.safetensors"
    synth = Synthesizer(channels=CHANNELS, **small(candidates=3))
    return synth.fit(daily, progress=False, checkpoint=checkpoint), checkpoint


def test_candidate_zero_is_the_plain_training_and_the_others_have_seeds_of_their_own():
    seeds = [candidate_seed(7, i) for i in range(4)]
    assert seeds[0] == 7 and len(set(seeds)) == 4
    assert not set(seeds[1:]) & set(range(7, 40))  # never a repeated run's seed (seed + 1, seed + 2, ...)
    assert seeds == [candidate_seed(7, i) for i in range(4)]


def test_the_kept_training_is_the_one_its_validation_persons_tell_apart_least(picked):
    synth, _ = picked
    record = synth.record["candidates"]
    scores = [c["validation_discriminative"] for c in record["trainings"]]
    assert len(scores) == 3 and record["kept"] == 1 + scores.index(min(scores))
    assert len(set(scores)) > 1  # the seeds made different trainings
    kept = record["trainings"][record["kept"] - 1]
    assert synth.record["training"]["best_epoch"] == kept["best_epoch"]
    # the model the synthesizer holds is the kept one: scored again, it gets the kept score
    assert validation_score(synth.recipe, synth.model, synth.parts, default_registry()) == pytest.approx(min(scores))


def test_candidate_one_trains_as_a_fit_without_candidates(picked, daily):
    synth, _ = picked
    plain = Synthesizer(channels=CHANNELS, **SMALL).fit(daily, progress=False)
    first = synth.record["candidates"]["trainings"][0]
    assert first["seed"] == plain.recipe.seed and "candidates" not in plain.record
    assert first["best_validation_loss"] == pytest.approx(plain.record["training"]["best_validation_loss"], abs=1e-9)


def test_a_resumed_fit_gives_back_each_finished_candidate_without_training_it(picked, daily):
    synth, checkpoint = picked
    files = sorted(p.name for p in checkpoint.parent.iterdir())
    assert files == [".run.checkpoint-2.safetensors", ".run.checkpoint-3.safetensors", ".run.checkpoint.safetensors"]
    again = Synthesizer(channels=CHANNELS, **small(candidates=3)).fit(
        daily, progress=False, checkpoint=checkpoint, resume=True
    )
    assert again.record["candidates"]["kept"] == synth.record["candidates"]["kept"]
    for before, after in zip(synth.record["candidates"]["trainings"], again.record["candidates"]["trainings"]):
        assert after["validation_discriminative"] == before["validation_discriminative"]
        assert after["best_validation_loss"] == before["best_validation_loss"]
    for name, weights in synth.model.generator.state_dict().items():
        assert torch.equal(weights, again.model.generator.state_dict()[name])


def test_removing_a_runs_checkpoints_leaves_another_runs_alone(tmp_path):
    names = [".run.checkpoint.safetensors", ".run.checkpoint-2.safetensors", ".run.checkpoint-x.checkpoint.safetensors"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    remove_checkpoints(tmp_path / "run")
    assert [p.name for p in tmp_path.iterdir()] == [".run.checkpoint-x.checkpoint.safetensors"]


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"privacy": {"target_epsilon": 3}}, "every candidate would spend the budget again"),
        ({"training": {"candidates": 2, "refit": True}}, "validation persons that choose among the candidates"),
    ],
)
def test_candidates_are_refused_where_the_pick_would_cost_privacy_or_read_trained_persons(sections, message):
    recipe = {"name": "r", "channels": CHANNELS, "training": {"candidates": 2}, **sections}
    with pytest.raises(SynthwearError, match=message):
        parse_recipe(recipe)


def test_too_few_validation_windows_to_score_is_refused_before_any_training(daily):
    first = daily.groupby("person_id")["date"].transform("min")
    month = daily[daily["date"] < first + pd.Timedelta(days=30)]  # one non-overlapping 21-day window a person
    month = month[month["person_id"].isin(month["person_id"].unique()[:20])]  # 3 validation persons
    synth = Synthesizer(channels=CHANNELS, **{**small(candidates=2), "windows": {"days": 21}})
    with pytest.raises(SynthwearError, match="training.candidates needs at least 5 non-overlapping validation windows"):
        synth.fit(month, progress=False)
    assert synth.model is None
