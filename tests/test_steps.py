"""The pipeline's steps on the shipped data: what encoding hands to training."""

import numpy as np
import pandas as pd
import pytest
import torch

from synthwear.errors import SynthwearError
from synthwear.plugins import default_registry
from synthwear.recipe import load_recipe, parse_recipe
from synthwear.steps import (
    LoadedData,
    build_model,
    changed_source,
    data_fingerprint,
    encode,
    fit_attributes,
    load_data,
    split_cohort,
    usable_persons,
)
from synthwear.summary import spread_id


@pytest.mark.parametrize("summary_of", ["window", "person"])
def test_every_training_window_opens_with_the_level_the_recipe_asks_for(tiny_recipe, summary_of):
    raw = load_recipe(tiny_recipe).to_dict()
    raw["windows"].update(summary=True, summary_of=summary_of)
    recipe, registry = parse_recipe(raw), default_registry()
    _, parts = split_cohort(recipe, load_data(recipe, registry), lambda note: None)
    model = build_model(recipe, registry, torch.device("cpu"))
    encoded = encode(recipe, model, parts, lambda note: None)
    _, targets = model.training_pair(encoded.train.batch(torch.arange(len(encoded.train))))

    train, days = parts["train"], recipe.windows.days
    bins = model.tokenize(train.values)[0].astype(float)
    bins[bins < 0] = np.nan
    person_means = [np.nanmean(bins[a:b], axis=0) for a, b in zip(train.offsets[:-1], train.offsets[1:])]
    rows = encoded.train.starts.numpy()[:, None] + np.arange(days)
    expected = {"person": np.array(person_means)[encoded.train_persons], "window": np.nanmean(bins[rows], axis=1)}
    level = targets[:, 0].numpy().astype(float)
    level[level < 0] = np.nan  # MISSING: no observed day
    np.testing.assert_allclose(level, np.round(expected[summary_of]), atol=1)  # ties round either way
    other = expected["window" if summary_of == "person" else "person"]
    assert np.nanmax(np.abs(level - np.round(other))) >= 2  # the two levels do differ


def test_with_a_spread_every_training_window_opens_with_its_persons_level_then_mean_change(tiny_recipe):
    raw = load_recipe(tiny_recipe).to_dict()
    raw["windows"].update(summary=True, summary_of="person", spread=True)
    recipe, registry = parse_recipe(raw), default_registry()
    _, parts = split_cohort(recipe, load_data(recipe, registry), lambda note: None)
    model = build_model(recipe, registry, torch.device("cpu"))
    encoded = encode(recipe, model, parts, lambda note: None)
    _, targets = model.training_pair(encoded.train.batch(torch.arange(len(encoded.train))))
    train = parts["train"]
    bins = model.tokenize(train.values)[0].astype(float)
    bins[bins < 0] = np.nan
    changes = [
        np.nanmean(np.abs(np.diff(bins[a:b], axis=0)), axis=0) for a, b in zip(train.offsets[:-1], train.offsets[1:])
    ]
    changes = torch.tensor(np.array(changes))  # NaN: a channel without two observed days in a row
    expected = torch.where(changes.isnan(), -1, spread_id(changes.nan_to_num(), 20))[encoded.train_persons]
    assert torch.equal(targets[:, 1], expected) and len(set(expected[:, 2].tolist())) > 3  # persons differ


def test_a_changed_table_is_named_by_its_own_file():
    frame = pd.DataFrame({"person_id": ["a"], "steps": [1.0]})
    persons = pd.DataFrame({"person_id": ["a"], "age": [30]})
    loaded = LoadedData(frame, "daily.csv", persons=persons, persons_source="persons.csv")
    trained_on = data_fingerprint(loaded)
    assert (
        changed_source(
            LoadedData(frame.assign(steps=2.0), "daily.csv", persons=persons, persons_source="persons.csv"), trained_on
        )
        == "daily.csv"
    )
    assert (
        changed_source(
            LoadedData(frame, "daily.csv", persons=persons.assign(age=31), persons_source="persons.csv"), trained_on
        )
        == "persons.csv"
    )
    assert changed_source(LoadedData(frame, "daily.csv"), trained_on) == "daily.csv"  # the persons table gone


def test_refit_windows_are_every_training_and_validation_window(tiny_recipe):
    """Not the validation subsample that scores epochs: every window of both parts, rows shifted past training's."""
    raw = load_recipe(tiny_recipe).to_dict()
    raw["training"]["refit"] = True
    raw["evaluation"]["max_windows"] = 5  # the validation windows scored: a subsample
    recipe, registry = parse_recipe(raw), default_registry()
    _, parts = split_cohort(recipe, load_data(recipe, registry), lambda note: None)
    encoded = encode(recipe, build_model(recipe, registry, torch.device("cpu")), parts, lambda note: None)
    days, stride, least = recipe.windows.days, recipe.windows.stride, recipe.windows.min_observed
    every_validation = parts["validation"].window_starts(days, stride, least)
    assert len(encoded.validation) == 5 < len(every_validation)
    assert len(encoded.refit) == len(encoded.train) + len(every_validation)
    shifted = len(encoded.train.tokens)
    assert torch.equal(
        encoded.refit.batch(torch.arange(len(encoded.train))), encoded.train.batch(torch.arange(len(encoded.train)))
    )
    assert torch.equal(encoded.refit.tokens[shifted:], encoded.validation.tokens)  # the validation persons' days
    assert torch.equal(encoded.refit.starts[len(encoded.train) :], torch.from_numpy(every_validation) + shifted)


def test_too_few_persons_with_a_window_names_the_window_settings(tiny_recipe):
    raw = load_recipe(tiny_recipe).to_dict()
    raw["windows"]["days"] = 400
    recipe = parse_recipe(raw)
    with pytest.raises(SynthwearError, match=r"windows.days = 400 days.*: 0 person\(s\) with a usable window"):
        split_cohort(recipe, load_data(recipe, default_registry()), lambda note: None)


def test_persons_without_a_usable_window_are_counted_in_a_note(tiny_recipe):
    """A long window quietly training on a few of the persons is a surprise the note prevents."""
    raw = load_recipe(tiny_recipe).to_dict()
    raw["windows"]["days"] = 100
    recipe = parse_recipe(raw)
    notes, loaded = [], load_data(recipe, default_registry())
    split_cohort(recipe, loaded, notes.append)
    usable, everyone = len(usable_persons(recipe, loaded)[1]), loaded.frame["person_id"].nunique()
    [note] = [n for n in notes if "left out" in n]
    assert 0 < usable < everyone and f"{everyone - usable} of {everyone} persons are left out" in note
    assert "windows.days = 100 days" in note


def test_a_persons_table_that_misses_training_persons_says_how_many_it_has(tiny_recipe, tmp_path):
    recipe = load_recipe(tiny_recipe)
    registry = default_registry()
    _, parts = split_cohort(recipe, load_data(recipe, registry), lambda note: None)
    some = list(parts["train"].person_ids[:3])
    (tmp_path / "persons.csv").write_text("person_id,group\n" + "".join(f"{p},{i % 2}\n" for i, p in enumerate(some)))
    raw = recipe.to_dict()
    raw["data"]["persons"] = str(tmp_path / "persons.csv")
    recipe = parse_recipe(raw)
    loaded, notes = load_data(recipe, registry), []
    fit_attributes(recipe, loaded, split_cohort(recipe, loaded, lambda note: None)[1], notes.append)
    n = len(parts["train"].person_ids)
    assert f"has rows for 3 of the {n} training persons; the others' attributes are unknown" in " ".join(notes)
