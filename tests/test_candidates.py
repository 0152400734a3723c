"""training.candidates: several trainings on one split, the one its validation persons tell apart least kept."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import torch
from cohorts import REPO
from rich.console import Console
from rich.progress import Progress
from test_synthesizer import CHANNELS, LIFESNAPS, SMALL

from synthwear import Synthesizer, SynthwearError
from synthwear.candidates import (
    SCORING_DRAWS,
    SCORING_STREAM,
    candidate_seed,
    derived_seed,
    draw_score,
    validation_score,
)
from synthwear.checkpoint import remove_checkpoints
from synthwear.pipeline import run_recipe
from synthwear.plugins import default_registry
from synthwear.recipe import load_recipe, parse_recipe
from synthwear.transfer import load_base


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


def test_a_candidate_is_judged_by_the_mean_of_samples_of_several_seeds(picked):
    synth, _ = picked
    scoring = derived_seed(synth.recipe.seed, SCORING_STREAM)
    draws = [
        draw_score(synth.recipe, synth.model, synth.parts, default_registry(), derived_seed(scoring, d))
        for d in range(SCORING_DRAWS)
    ]
    assert SCORING_DRAWS == 3 and len(set(draws)) > 1  # the samples differ, and so do their scores
    assert validation_score(synth.recipe, synth.model, synth.parts, default_registry()) == pytest.approx(np.mean(draws))


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


def test_too_few_validation_windows_to_score_train_once_and_say_why(daily):
    """A recipe asking for several trainings still runs on a cohort too small to choose among them."""
    first = daily.groupby("person_id")["date"].transform("min")
    month = daily[daily["date"] < first + pd.Timedelta(days=30)]  # one non-overlapping 21-day window a person
    month = month[month["person_id"].isin(month["person_id"].unique()[:20])]  # 3 validation persons
    synth = Synthesizer(channels=CHANNELS, **{**small(candidates=2), "windows": {"days": 21}})
    console = Console(record=True, file=io.StringIO(), width=400)
    synth.fit(month, progress=Progress(console=console))
    assert "training.candidates: 2 needs at least 5 non-overlapping validation windows" in console.export_text()
    assert "candidates" not in synth.record and synth.recipe.training.candidates == 1
    once = Synthesizer(channels=CHANNELS, **{**small(), "windows": {"days": 21}}).fit(month, progress=False)
    for name, weights in synth.model.generator.state_dict().items():
        assert torch.equal(weights, once.model.generator.state_dict()[name])  # the plain training


def test_a_run_killed_in_its_second_candidate_resumes_to_the_run_never_stopped_and_leaves_no_checkpoint(
    tmp_path, monkeypatch
):
    """Candidate 2's second checkpoint cannot be written (the disk fills): both candidates' checkpoints
    are kept; --resume gives candidate 1 back untrained, finishes candidate 2, keeps the same training
    as a run never stopped and removes every checkpoint once the folder is in place."""
    from safetensors.torch import load_file
    from test_pipeline import full_at_checkpoint

    recipe = load_recipe(REPO / "recipes" / "tiny.yaml")
    recipe.training.candidates = 2
    reference = run_recipe(recipe, tmp_path / "reference")
    out = tmp_path / "run"
    with monkeypatch.context() as patched:
        full_at_checkpoint(patched, 4)  # candidate 1 saved its two epochs, candidate 2 its first
        with pytest.raises(SynthwearError, match=r"\.run\.checkpoint-2\.safetensors: cannot be written"):
            run_recipe(recipe, out)
    kept = [".run.checkpoint-2.safetensors", ".run.checkpoint.safetensors", "reference"]
    assert sorted(p.name for p in tmp_path.iterdir()) == kept
    resumed = run_recipe(recipe, out, resume=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reference", "run"]
    assert resumed.run["candidates"] == reference.run["candidates"] | {
        "trainings": [
            {**c, "seconds": r["seconds"]}
            for c, r in zip(reference.run["candidates"]["trainings"], resumed.run["candidates"]["trainings"])
        ]
    }
    expected, got = (load_file(f / "model" / "weights.safetensors") for f in (tmp_path / "reference", out))
    assert all((expected[k] == got[k]).all() for k in expected)


def test_candidates_fine_tuned_from_a_base_each_start_from_it(daily):
    recipe = {
        "channels": CHANNELS,
        "base": {"model": "lifesnaps", "train": "heads"},
        "training": {"epochs": 1, "patience": 1, "candidates": 2},
        "sampling": {"persons": 20},
    }
    synth = Synthesizer(recipe | {"name": "tuned"}).fit(daily, progress=False)
    tuned, base = synth.record["base"], load_base(synth.recipe, default_registry(), torch.device("cpu"))
    assert len(synth.record["candidates"]["trainings"]) == 2 and tuned["train"] == "heads"
    kept, start = synth.model.generator.state_dict(), base.generator.state_dict()
    frozen = [name for name in start if name not in tuned["trained"] and name not in tuned["new"]]
    assert frozen and all(torch.equal(kept[name], start[name]) for name in frozen)  # the kept one began at the base
