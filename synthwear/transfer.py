"""Starting from a base model: fine-tuning a trained model on new persons instead of training anew.

A few dozen private persons cannot teach a transformer daily physiology, least of all under DP-SGD,
whose noise drowns what so few persons' clipped gradients say. A base trained on public data already
knows it; the private persons then only move it towards their cohort. The model is matched to the
base by name: each channel ("steps"), gap twin ("steps observed"), calendar feature ("weekday") and
attribute ("attribute gender") the base knows keeps its weights, the rest start fresh; a channel the
base has and the data lacks is kept as a latent channel (``base.keep_channels``): drawn as the base
draws it (into the training persons' days too) and read by the others, with the base's weights,
never scored or written. What is then
trained (``base.train``) is everything, the last layers, the heads, or low-rank adapters
(``LowRankAdapter``); fresh parts are always trained, since the base has nothing for them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from synthwear.bases import base_folder
from synthwear.cohort import Cohort
from synthwear.covariates import OBSERVED
from synthwear.errors import SynthwearError
from synthwear.model import SynthesisModel, sample_token
from synthwear.plugins import Registry
from synthwear.recipe import BaseSection, PluginChoice, Recipe, per_channel

HOOKS = ("load_base", "fine_tuning_parameters", "add_adapters", "merge_adapters")  # what a generator implements
LATENT_HOOK = "channel_parameters"  # what it implements too for ``base.keep_channels``
DRAW_PERSONS = 4096  # persons whose latent day is drawn in one pass (``draw_latent``)


@dataclass
class FineTuning:
    """What run.json records about a model that started from a base."""

    base: str  # the shipped base's name or the folder
    folder: str
    train: str
    rank: int | None  # the adapters' rank (train: adapters)
    new: list[str]  # parameters the base had nothing for: initialised fresh, always trained
    trained: list[str]  # parameters training changed (adapters: the adapters and heads, merged afterwards)
    trained_values: int = 0
    total_values: int = 0
    latent: list[str] = field(default_factory=list)  # the base's channels generated as it does, never trained

    def to_dict(self) -> dict:
        return asdict(self)


def load_base(recipe: Recipe, registry: Registry, device: torch.device) -> SynthesisModel:
    """The model the recipe's ``base.model`` names."""
    folder = base_folder(recipe.base.model, recipe.resolve_path)
    base = SynthesisModel.load(folder, registry=registry, device=device)
    hooks = HOOKS + (LATENT_HOOK,) * bool(latent_channels(recipe, base))
    missing = [hook for hook in hooks if not callable(getattr(base.generator, hook, None))]
    if missing:
        raise SynthwearError(
            f"{recipe.where()}: base: the {base.generator_name!r} generator cannot be fine-tuned (it lacks {missing[0]})"
        )
    return base


def with_base_defaults(recipe: Recipe, base: SynthesisModel) -> Recipe:
    """The recipe with what the base's weights were shaped by, where the recipe does not say itself:
    its generator and options, its encoder (the bins) and its window length and summary day."""
    update: dict = {}
    if "generator" not in recipe.model_fields_set:
        options = {k: v for k, v in base.recipe["generator"].items() if k != "name"}
        update["generator"] = PluginChoice(name=base.generator_name, **options)
    if "encoder" not in recipe.model_fields_set:
        update["encoder"] = PluginChoice(**base.recipe["encoder"])
    shape = {key: base.recipe["windows"].get(key, False) for key in ("days", "summary", "spread")}
    unset = {key: value for key, value in shape.items() if key not in recipe.windows.model_fields_set}
    if unset:
        update["windows"] = recipe.windows.model_copy(update=unset)
    return recipe.model_copy(update=update)


def latent_channels(recipe: Recipe, base: SynthesisModel | None) -> dict[str, float]:
    """With ``base.keep_channels``, the base's channels the recipe lacks, each with the temperature the
    base draws it at (its recipe's, or its own latent channel's): the model generates them as latent
    channels (``SynthesisModel.latent``)."""
    if base is None or not recipe.base.keep_channels:
        return {}
    own = per_channel(base.recipe["sampling"]["temperature"], base.channels)
    drawn = dict(zip(base.channels, own)) | base.latent
    return {name: temperature for name, temperature in drawn.items() if name not in recipe.channels}


def latent_sizes(base: SynthesisModel, latent: dict[str, float]) -> list[int]:
    """The base's number of ids of each latent channel."""
    return [base.spec.vocab_sizes[base.modelled.index(name)] for name in latent]


def slot_names(model: SynthesisModel) -> list[str]:
    """What each of the generator's input channels is, in its order."""
    attributes = [f"attribute {name}" for name in model.attributes.columns] if model.attributes else []
    return model.scored_names() + list(model.calendar) + attributes


def base_slots(model: SynthesisModel, base: SynthesisModel, where: str) -> list[int | None]:
    """For each of the model's input channels, the base's channel of the same name (None: the base has
    none, or a covariate of another size). A shared data channel must be binned as in the base."""
    for name in sorted(set(model.channels) & set(base.channels)):
        if binning(model, name) != binning(base, name):
            raise SynthwearError(
                f"{where}: channels.{name}: {binning(model, name)}, the base's {binning(base, name)}; "
                "a shared channel must be binned as in the base"
            )
    theirs = {name: index for index, name in enumerate(slot_names(base))}
    slots: list[int | None] = []
    for index, name in enumerate(slot_names(model)):
        source = theirs.get(name)
        if source is not None and base.spec.vocab_sizes[source] != model.spec.vocab_sizes[index]:
            source = None  # a covariate of another size (an attribute with other categories): fresh
        slots.append(source)
    return slots


def binning(model: SynthesisModel, channel: str) -> str:
    index = model.channels.index(channel)
    return f"range {list(model.ranges[index])} with encoder {model.encoders[index].describe()}"


def start_from_base(model: SynthesisModel, base: SynthesisModel, where: str) -> list[str]:
    """Load the base's weights into ``model`` where names match; the names of the fresh parameters."""
    try:
        return model.generator.load_base(base.generator, base_slots(model, base, where), base.n_scored)
    except ValueError as err:  # the architectures differ
        raise SynthwearError(f"{where}: base: {err}") from None


def with_latent_drawn(tokens: np.ndarray, model: SynthesisModel, base: SynthesisModel, part: Cohort, seed: int) -> None:
    """Fill ``day_tokens``' latent columns of ``part``'s days (``tokens``, in place) with the base's
    draws: day by day, each from the base's prediction given the person's days before it, the data's
    channels as observed and the latent ones as drawn (with ``gaps``, marked observed). Why: read as
    missing on every training day, a latent channel would teach the fine-tuning a condition that
    sampling, which draws it, never meets. A person's draws read only that person's days and the public
    base, so DP-SGD's person-level guarantee covers training on them."""
    values = np.full((len(part.values), len(base.channels)), np.nan)
    for c, name in enumerate(base.channels):
        if name in model.channels:
            values[:, c] = part.values[:, model.channels.index(name)]
    theirs = base.day_tokens(values, part.dates())[0]
    columns = [base.modelled.index(name) for name in model.latent]
    if base.gaps:
        theirs[:, [len(base.modelled) + c for c in columns]] = OBSERVED
    draw_latent(base, theirs, part.offsets, columns, list(model.latent.values()), seed)
    slots = model.latent_slots()  # the values, then (with gaps) their "observed"
    tokens[:, slots[: len(columns)]] = theirs[:, columns]
    tokens[:, slots[len(columns) :]] = OBSERVED


@torch.no_grad()
def draw_latent(
    base: SynthesisModel,
    tokens: np.ndarray,
    offsets: np.ndarray,
    columns: list[int],
    temperatures: list[float],
    seed: int,
) -> None:
    """Draw the base's ``columns`` of ``tokens`` (D, base's day_tokens columns) day by day, in place:
    day t of every person who has one at once, each from the last position of the window of up to
    ``window_days`` days ending on it (its summary hidden, as when a real window is scored causally)."""
    base.generator.eval()
    generator = torch.Generator(device=base.device).manual_seed(seed)
    lengths = np.diff(offsets)
    for day in range(int(lengths.max(initial=0))):
        span = min(day + 1, base.window_days)
        persons = np.flatnonzero(lengths > day)
        for chunk in np.array_split(persons, -(-len(persons) // DRAW_PERSONS)):
            rows = offsets[chunk][:, None] + np.arange(day + 1 - span, day + 1)
            inputs, targets = base.training_pair(torch.from_numpy(tokens[rows]).to(base.device), hide_summary=1.0)
            logits = base.predict(base.generator, inputs, targets)
            for column, temperature in zip(columns, temperatures):
                drawn = sample_token(logits[column][:, -1], temperature, generator)
                tokens[rows[:, -1], column] = drawn.cpu().numpy()


def latent_parameters(model: SynthesisModel) -> list[str]:
    """The parameters only the latent channels' predictions and inputs use. They keep the base's
    values: the data has no day of these channels, so no gradient reaches them, and DP-SGD's noise or
    weight decay would only move them away from what the base learned."""
    return model.generator.channel_parameters(model.latent_slots()) if model.latent else []


@contextmanager
def fine_tuning(model: SynthesisModel, section: BaseSection, source: Path, new: list[str]) -> Iterator[FineTuning]:
    """Within the block only what ``section.train`` says (and the fresh parameters) is trainable;
    after it, adapters are folded into their layers and every parameter is trainable again, so the
    model saved is the plain generator model.json describes."""
    generator = model.generator
    if section.train == "adapters":
        trained = generator.add_adapters(section.rank) + generator.fine_tuning_parameters("heads")
    elif section.train == "all":
        trained = [name for name, _ in generator.named_parameters()]
    else:
        trained = generator.fine_tuning_parameters(section.train)
    trained = sorted((set(trained) | set(new)) - set(latent_parameters(model)))
    for name, parameter in generator.named_parameters():
        parameter.requires_grad_(name in trained)
    record = FineTuning(
        section.model,
        str(source),
        section.train,
        section.rank if section.train == "adapters" else None,
        new,
        trained,
        sum(p.numel() for name, p in generator.named_parameters() if name in trained),
        sum(p.numel() for name, p in generator.named_parameters() if ".down." not in name and ".up." not in name),
        list(model.latent),
    )
    try:
        yield record
    finally:
        if section.train == "adapters":
            generator.merge_adapters()
        generator.requires_grad_(True)


def tuned_from(
    recipe: Recipe, model: SynthesisModel, base: SynthesisModel | None
) -> AbstractContextManager[FineTuning | None]:
    """``model`` started from ``base`` and made trainable as ``recipe.base`` says, for the training
    inside the block (nothing happens without a base)."""
    if base is None:
        return nullcontext()
    new = start_from_base(model, base, recipe.where())
    return fine_tuning(model, recipe.base, base_folder(recipe.base.model, recipe.resolve_path), new)
