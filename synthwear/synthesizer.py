"""``Synthesizer``: the Python front door, shaped like SDV's synthesizers and Opacus' engine.

    from synthwear import Synthesizer
    synth = Synthesizer.from_recipe("recipes/fitbit.yaml")
    synth.fit(daily)                                   # person_id, date, one column per channel
    cohort = synth.sample(persons=1000, days=90, seed=0)
    report = synth.evaluate()                          # against the persons fit held out
    report.to_html("report.html")
    synth.save("model/"); same = Synthesizer.load("model/")

Privacy is a keyword of ``fit`` (``epsilon=3``), not a second class. ``fit`` runs the named steps of
``synthwear.steps``; ``synthwear run`` writes its run folder around this same object, so the command
line and a notebook train, sample and evaluate the same way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from rich.progress import Progress

from synthwear.attributes import AttributeModel
from synthwear.behaviour import Acceptance, DayCondition, batches_meeting, day_conditions
from synthwear.candidates import best_candidate, candidate_checkpointing, kept_note, scorable_candidates
from synthwear.checkpoint import Checkpointing, run_digest
from synthwear.cohort import Cohort
from synthwear.conditions import Conditions
from synthwear.errors import SynthwearError, shown
from synthwear.evaluation import build_evaluators, run_evaluators
from synthwear.model import SynthesisModel
from synthwear.persistence import fit_persistence
from synthwear.plugins import Registry, default_registry
from synthwear.privacy.accounting import check_budget
from synthwear.progress import Feedback, feedback
from synthwear.recipe import Recipe, load_recipe, parse_recipe
from synthwear.report.page import Report, read_json
from synthwear.sampling import check_conditions, check_last_day, sample_persons, to_long_frame
from synthwear.steps import (
    Encoded,
    LoadedData,
    build_loss,
    build_model,
    check_model_options,
    data_fingerprint,
    encode,
    evaluation_context,
    evaluation_windows,
    fit_attributes,
    frame_data,
    load_data,
    package_versions,
    split_cohort,
    train,
)
from synthwear.train import TrainingResult, resolve_device
from synthwear.transfer import FineTuning, load_base, tuned_from, with_base_defaults

FIT_RECORD = "fit.json"  # beside model.json: how the model was trained (no person-level data)


class Synthesizer:
    """A synthesizer of daily wearable data: fit on real persons, sample synthetic ones, evaluate.

    Built from a recipe (a ``Recipe``, its mapping, or ``from_recipe(path)``), or from
    ``channels=`` and any other recipe section as a keyword (``generator=``, ``training=``, ...),
    validated exactly as a recipe file is. ``device`` overrides ``training.device``.
    """

    def __init__(
        self,
        recipe: Recipe | dict[str, Any] | None = None,
        *,
        channels: dict[str, Any] | None = None,
        device: str | None = None,
        registry: Registry | None = None,
        **sections: Any,
    ):
        if recipe is None:
            if channels is None:
                raise SynthwearError("Synthesizer: give a recipe, or channels= (and any other recipe section)")
            recipe = {"name": "synthesizer", "channels": channels, **sections}
        elif channels is not None or sections:
            raise SynthwearError("Synthesizer: give a recipe or recipe sections as keywords, not both")
        if isinstance(recipe, dict):
            recipe = parse_recipe(recipe)
        if device is not None:
            recipe = with_device(recipe, device)
        self.recipe = recipe
        self.registry = registry or default_registry()
        self.device = resolve_device(recipe.training.device)  # a device this machine lacks: refused now
        self.model: SynthesisModel | None = None
        self.parts: dict[str, Cohort] | None = None  # train / validation / holdout persons of the last fit
        self.record: dict[str, Any] = {}  # what the last fit did (run.json's body)

    @classmethod
    def from_recipe(cls, path: str | Path, **options: Any) -> Synthesizer:
        """A synthesizer as a recipe file describes it (``device=``, ``registry=`` may be given too)."""
        return cls(load_recipe(Path(path)), **options)

    # --- fit ----------------------------------------------------------------------------------
    def fit(
        self,
        data: pd.DataFrame | None = None,
        *,
        persons: pd.DataFrame | None = None,
        epsilon: float | None = None,
        delta: float | None = None,
        holdout_persons: list[str] | None = None,
        progress: bool | Progress | None = True,
        checkpoint: Path | None = None,
        resume: bool = False,
    ) -> Synthesizer:
        """Train on a daily table (or, without one, the recipe's data), holding persons out as the
        recipe's split says (or exactly ``holdout_persons``). ``persons``: a per-person attributes table
        (person_id and any columns; default: the recipe's ``data.persons``), modelled jointly. ``epsilon`` (and ``delta``) train with
        person-level DP-SGD to that budget. ``checkpoint``: a file the state is kept in after every
        epoch (with ``training.candidates``, candidate k > 1 beside it as ``<stem>-k<suffix>``);
        ``resume`` continues from it. Returns the synthesizer, fitted."""
        if delta is not None and epsilon is None:
            raise SynthwearError("fit: delta= needs epsilon= (the privacy budget)")
        recipe = self.recipe if epsilon is None else with_privacy(self.recipe, epsilon, delta)
        timings: dict[str, float] = {}
        with seeded(recipe.seed, self.device), feedback(progress) as say:
            clock = time.perf_counter()
            base = load_base(recipe, self.registry, self.device) if recipe.base else None
            recipe = with_base_defaults(recipe, base) if base else recipe
            loss = build_loss(recipe, self.registry, base)
            check_model_options(recipe, self.registry)
            if recipe.privacy:
                check_budget(recipe.privacy)
            loaded = load_data(recipe, self.registry) if data is None else frame_data(recipe, data)
            for note in loaded.notes:
                say.note(note)
            if persons is not None:
                loaded.persons, loaded.persons_source = persons, "the persons DataFrame"
            split, parts = split_cohort(recipe, loaded, say.note, holdout_persons)
            attributes = fit_attributes(recipe, loaded, parts, say.note)
            ranges = {name: channel.range for name, channel in recipe.channels.items()}
            sampling, days = recipe.sampling, recipe.sampling.days or recipe.windows.days
            check_conditions(attributes, sampling.where, sampling.quotas, recipe.where(), ranges, days)
            model = build_model(recipe, self.registry, self.device, attributes, base)
            if not recipe.privacy:  # a real person's first day is theirs: under DP the model keeps none
                model.start_dates = parts["train"].first_day_counts()
            encoded = encode(recipe, model, parts, say.note, base)
            recipe = scorable_candidates(recipe, parts["validation"], say.note)
            fingerprinted = data_fingerprint(loaded)  # hashed once: the checkpoint and run.json both name it
            timings["load"] = time.perf_counter() - clock
            clock = time.perf_counter()
            digest = run_digest(recipe.to_dict(), fingerprinted)
            checkpointing = Checkpointing(Path(checkpoint), digest, resume) if checkpoint else None
            training = SeededTraining(
                recipe, self.registry, model, loss, encoded, base, say, checkpointing, parts["train"]
            )
            if recipe.training.candidates == 1:
                (model, result), kept, candidates = training(0, recipe.seed), 0, []
            else:
                model, chosen, candidates = best_candidate(recipe, training, parts, self.registry)
                result, kept = chosen.result, chosen.index
                say.note(kept_note(chosen, candidates))
            timings["train"] = time.perf_counter() - clock
        self.recipe, self.model, self.parts = recipe, model, parts
        self.record = fit_record(recipe, loaded, fingerprinted, split.to_dict(), encoded, self.registry)
        self.record |= {"device": str(self.device), "training": result.to_dict(), "timings_seconds": timings}
        self.record["windows"]["evaluation_holdout"] = len(evaluation_windows(recipe, parts["holdout"]).values)
        privacy, tuned = training.extras[kept]
        self.record |= optional_records(privacy, tuned, attributes, loaded.persons_source)
        if model.persistence is not None:
            self.record["persistence_fitted"] = dict(zip(model.channels, model.persistence))
        if candidates:
            self.record["candidates"] = {"kept": kept + 1, "trainings": [c.to_dict() for c in candidates]}
        return self

    # --- sample -------------------------------------------------------------------------------
    def sample(
        self,
        persons: int | None = None,
        days: int | None = None,
        *,
        seed: int | None = None,
        temperature: float | dict[str, float] | None = None,
        prime: pd.DataFrame | None = None,
        start_date: str | date | None = None,
        where: list[str] | None = None,
        quotas: list[str] | dict[str, dict[str, float]] | None = None,
        seed_table: pd.DataFrame | None = None,
        progress: bool | Progress | None = False,
    ) -> pd.DataFrame:
        """A synthetic cohort as a daily table (person_id, date, channels); ``sample_cohort`` also gives
        the persons' attributes. Defaults come from the recipe's ``sampling`` section. ``prime``: real
        persons' days (a daily table) that each synthetic person continues; every primed person needs
        the same number of calendar days; with ``prime``, ``seed_table`` gives their attributes (a row per
        primed person_id, filled cells kept, the rest drawn given them; without it the model reads them
        as unknown). ``where``, ``quotas``, ``seed_table``: see ``sample_cohort``."""
        if prime is not None:
            daily, _ = self.continue_persons(prime, days, seed=seed, temperature=temperature, persons=seed_table)
            return daily
        daily, _ = self.sample_cohort(
            persons,
            days,
            seed=seed,
            temperature=temperature,
            start_date=start_date,
            where=where,
            quotas=quotas,
            seed_table=seed_table,
            progress=progress,
        )
        return daily

    def sample_cohort(
        self,
        persons: int | None = None,
        days: int | None = None,
        *,
        seed: int | None = None,
        temperature: float | dict[str, float] | None = None,
        start_date: str | date | None = None,
        where: list[str] | None = None,
        quotas: list[str] | dict[str, dict[str, float]] | None = None,
        seed_table: pd.DataFrame | None = None,
        progress: bool | Progress | None = False,
    ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        """The daily table and, for a model with person attributes, the persons table (person_id and
        attributes, the same ids). ``where``: conditions every person meets ("gender == 'female'",
        "bmi >= 25"); ``quotas``: exact shares per category ("gender=female:0.5" or a mapping);
        ``seed_table``: one row per person to generate, its filled cells kept (``persons`` is then its
        length). Conditions are checked before anything is generated."""
        attributes = self.synthetic_persons(persons, seed, where=where, quotas=quotas, seed_table=seed_table)
        persons = len(attributes) if attributes is not None else persons
        starts = self.first_days(persons, seed, start_date)
        values = self.sample_array(
            persons,
            days,
            seed=seed,
            temperature=temperature,
            start=starts,
            attributes=self.attribute_codes(attributes),
            where=None if seed_table is None and where is None else where or [],
            progress=progress,
        )
        return to_long_frame(values, self.fitted.channels, starts), attributes

    def synthetic_persons(
        self,
        persons: int | None = None,
        seed: int | None = None,
        *,
        where: list[str] | None = None,
        quotas: list[str] | dict[str, dict[str, float]] | None = None,
        seed_table: pd.DataFrame | None = None,
        seed_source: str = "the seed table",
    ) -> pd.DataFrame | None:
        """The synthetic persons' attributes, drawn first (None for a model without attributes); the
        recipe's ``sampling.where`` and ``sampling.quotas`` unless given or a seed table says who."""
        sampling, own = self.recipe.sampling, seed_table is None
        return sample_persons(
            self.fitted,
            persons or sampling.persons,
            self.recipe.seed if seed is None else seed,
            where=(sampling.where if own else []) if where is None else where,
            where_from="--where" if where is not None else f"{self.recipe.where()}: sampling.where",
            quotas=(sampling.quotas if own else None) if quotas is None else quotas,
            seed_table=seed_table,
            seed_source=seed_source,
        )

    def attribute_codes(self, attributes: pd.DataFrame | None) -> np.ndarray | None:
        return None if attributes is None else self.fitted.attributes.encode(attributes, source="synthetic persons")

    def first_days(self, persons: int | None = None, seed: int | None = None, start_date: Any = None) -> np.ndarray:
        """Each synthetic person's first day: ``start_date``, the recipe's, or drawn as the model says
        (``SynthesisModel.first_days``); the same persons and seed always give the same days."""
        return self.fitted.first_days(
            persons or self.recipe.sampling.persons,
            self.recipe.seed if seed is None else seed,
            start_date or self.recipe.sampling.start_date,
        )

    def sample_array(
        self,
        persons: int | None = None,
        days: int | None = None,
        *,
        seed: int | None = None,
        temperature: float | dict[str, float] | None = None,
        prime: np.ndarray | None = None,
        start: np.ndarray | None = None,
        attributes: np.ndarray | None = None,
        where: list[str] | None = None,
        progress: bool | Progress | None = False,
    ) -> np.ndarray:
        """``sample`` as an array (persons, days, channels), what evaluators and run folders take;
        ``start`` each person's first day (default: ``first_days``), ``attributes`` their attribute
        codes (default: unknown); ``where``'s conditions on a person's days (default: the recipe's
        ``sampling.where``; ``mean(steps) > 8000``) met by drawing again, with the acceptance rate
        recorded under ``sampling``."""
        model, sampling = self.fitted, self.recipe.sampling
        persons = persons or (len(prime) if prime is not None else sampling.persons)
        days = days or sampling.days or model.window_days
        start = self.first_days(persons, seed) if start is None else start
        check_last_day(start, days, "prime" if prime is not None else "sampling")
        if temperature is not None:
            sampling = sampling.model_copy(update={"temperature": temperature})
        conditions = self.day_conditions(where, days) if prime is None else []
        tally = Acceptance()
        with feedback(progress) as say:
            advance = say.task("sampling", persons)
            clock = time.perf_counter()
            batches = batches_meeting(
                model,
                conditions,
                persons,
                days,
                tally=tally,
                temperature=sampling.temperatures(model.channels),
                summary_temperature=sampling.summary_temperatures(model.channels),
                persistence=sampling.persistences(model.channels, model.persistence),
                seed=self.recipe.seed if seed is None else seed,
                prime=prime,
                start=start,
                attributes=attributes,
                complete=sampling.complete,
                on_progress=lambda done: advance(0, completed=done),
            )
            values = np.concatenate(list(batches))
            if conditions:
                say.note(tally.line(conditions))
        self.record.setdefault("timings_seconds", {})["sample"] = time.perf_counter() - clock
        self.record["sampling"] = {
            "persons": persons,
            "days": days,
            "temperature": sampling.temperature,
            "summary_temperature": sampling.summary_temperature,
            "persistence": sampling.persistence,
        }
        if conditions:
            self.record["sampling"]["conditions_on_days"] = {"where": [c.condition.text for c in conditions]}
            self.record["sampling"]["conditions_on_days"] |= tally.to_dict()
        return values

    def day_conditions(self, where: list[str] | None, days: int | None = None) -> list[DayCondition]:
        """``where``'s conditions on a person's days (the recipe's ``sampling.where`` when None), checked
        against the model's channels and the ``days`` each person gets."""
        origin = "--where" if where is not None else f"{self.recipe.where()}: sampling.where"
        given = self.recipe.sampling.where if where is None else where
        conditions = Conditions(given, origin) if given else None
        return day_conditions(conditions, self.fitted.channels, self.fitted.ranges, days)

    def continue_persons(
        self,
        prime: pd.DataFrame,
        days: int | None,
        *,
        seed: int | None,
        temperature: Any,
        persons: pd.DataFrame | None = None,
        persons_source: str = "the seed table",
    ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        """Each primed person's days, continued by the model to ``days`` days in all, and their
        attributes (``primed_persons``; None without ``persons``)."""
        # a channel never worn in the given days is continued too (the model reads it as missing)
        given = frame_data(self.recipe, prime, "prime", empty_channels=True).frame
        cohort = Cohort.from_frame(given, self.fitted.channels, np.float64)
        lengths = np.diff(cohort.offsets)
        if len(set(lengths)) != 1:
            odd = cohort.person_ids[np.argmax(lengths != lengths[0])]
            raise SynthwearError(
                f"prime: person {shown(odd)} spans {lengths[lengths != lengths[0]][0]} days and "
                f"{shown(cohort.person_ids[0])} {lengths[0]}; every primed person needs the same number of days"
            )
        given = cohort.values.reshape(cohort.n_persons, int(lengths[0]), -1)
        attributes = self.primed_persons(cohort.person_ids, persons, seed, persons_source)
        values = self.sample_array(
            days=days,
            seed=seed,
            temperature=temperature,
            prime=given,
            start=cohort.first_date,
            attributes=self.attribute_codes(attributes),
        )
        dates = cohort.first_date[:, None] + np.arange(values.shape[1]).astype("timedelta64[D]")
        frame = pd.DataFrame(values.reshape(-1, values.shape[2]), columns=self.fitted.channels)
        frame.insert(0, "date", pd.to_datetime(dates.reshape(-1)))
        frame.insert(0, "person_id", np.repeat(cohort.person_ids, values.shape[1]))
        return frame, attributes

    def primed_persons(
        self, ids: np.ndarray, table: pd.DataFrame | None, seed: int | None, source: str = "the seed table"
    ) -> pd.DataFrame | None:
        """The attributes of the primed persons ``ids``: ``table``'s row for each, found by person_id, its
        filled cells kept and the rest drawn given them (a primed person without a row: all drawn).
        None without a table."""
        if table is None:
            return None
        if "person_id" not in table.columns:
            raise SynthwearError(
                f"{source}: no 'person_id' column; it names the primed persons whose attributes it gives"
            )
        named = table["person_id"].astype(str).str.strip()
        if named.duplicated().any():
            raise SynthwearError(f"{source}: person {shown(named[named.duplicated()].iloc[0])} has two rows")
        strangers = named[~named.isin(ids)]
        if len(strangers):
            raise SynthwearError(f"{source}: person {shown(strangers.iloc[0])} has no days in the history")
        rows = table.drop(columns="person_id").set_axis(named).reindex(ids).reset_index(drop=True)
        drawn = self.synthetic_persons(len(ids), seed, seed_table=rows, seed_source=source)
        return drawn.assign(person_id=ids)

    # --- evaluate -----------------------------------------------------------------------------
    def evaluate(
        self,
        holdout: pd.DataFrame | None = None,
        *,
        train: pd.DataFrame | None = None,
        synthetic: pd.DataFrame | None = None,
        evaluators: list[str] | None = None,
        progress: bool | Progress | None = False,
    ) -> Report:
        """Score a synthetic cohort (fresh from ``sample`` unless given) against real persons never
        trained on: the persons ``fit`` held out, or ``holdout``. Membership attacks compare them with
        the training persons (those of ``fit``, or ``train`` for a loaded synthesizer). Each
        evaluator runs isolated: one that fails is a failure in the report, not an exception."""
        recipe, model = self.recipe, self.fitted
        parts = {name: self.real_part(name, frame) for name, frame in (("train", train), ("holdout", holdout))}
        if synthetic is None:
            starts, codes = self.first_days(), self.attribute_codes(self.synthetic_persons())
            values = self.sample_array(start=starts, attributes=codes)
        else:
            (values, starts), codes = synthetic_values(synthetic, model.channels), None
        chosen = build_evaluators(recipe, self.registry, evaluators)
        context = evaluation_context(recipe, parts, model, values, starts, self.record.get("privacy"), codes)
        with feedback(progress) as say:
            advance = say.task("evaluating", len(chosen))
            clock = time.perf_counter()
            metrics = run_evaluators(chosen, context, on_done=lambda name: advance())
        self.record.setdefault("timings_seconds", {})["evaluate"] = time.perf_counter() - clock
        frame = to_long_frame(values, model.channels, starts)
        return Report(metrics, {**self.record, "recipe": recipe.to_dict()}, frame, self.registry)

    def real_part(self, name: str, frame: pd.DataFrame | None) -> Cohort:
        if frame is not None:
            return Cohort.from_frame(frame_data(self.recipe, frame, name).frame, self.fitted.channels)
        if self.parts is None:
            raise SynthwearError(
                f"evaluate: this synthesizer was not fitted in this session; pass {name}= (real persons as a daily table)"
            )
        return self.parts[name]

    # --- save and load ------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """The model folder ``synthwear sample`` and ``Synthesizer.load`` read: weights, model.json
        (with the recipe) and fit.json (how it was trained; counts, never persons' ids or values)."""
        folder = Path(folder)
        self.fitted.save(folder)
        (folder / FIT_RECORD).write_text(json.dumps(self.record, indent=2, default=str))
        return folder

    @classmethod
    def load(cls, folder: str | Path, *, device: str | None = None, registry: Registry | None = None) -> Synthesizer:
        """A saved synthesizer, ready to sample (and to evaluate, given real persons)."""
        folder, registry = Path(folder), registry or default_registry()
        model = SynthesisModel.load(folder, registry, device=resolve_device(device or "auto", "device"))
        if not isinstance(model.recipe, dict):
            raise SynthwearError(f"{folder / 'model.json'}: saved without its recipe; it can be sampled, not loaded")
        synth = cls(
            parse_recipe(model.recipe, source=folder / "model.json"), device=str(model.device), registry=registry
        )
        synth.model = model
        # fit.json beside the model; a run folder's model/ written before fit.json existed has run.json above it
        record = next((path for path in (folder / FIT_RECORD, folder.parent / "run.json") if path.exists()), None)
        synth.record = read_json(record) if record else {}
        return synth

    @property
    def fitted(self) -> SynthesisModel:
        if self.model is None:
            raise SynthwearError(
                "this synthesizer is not fitted yet: call fit(data) first, or Synthesizer.load(folder)"
            )
        return self.model


class SeededTraining:
    """One training of a fit per seed, called as ``(index, seed)`` (what ``best_candidate`` calls each
    candidate with): candidate 0 trains the model and loss the fit built; every other a fresh model and
    loss drawn from its own seed, so that a candidate depends on its seed alone; with
    ``sampling.persistence: auto`` each fits its persistence to the training ``persons`` before it is
    judged. Keeps each training's (privacy spent, base tuning) in ``extras``."""

    def __init__(
        self,
        recipe: Recipe,
        registry: Registry,
        model: SynthesisModel,
        loss: Any,
        encoded: Encoded,
        base: SynthesisModel | None,
        say: Feedback,
        checkpointing: Checkpointing | None,
        persons: Cohort,
    ):
        self.recipe, self.registry, self.encoded, self.base = recipe, registry, encoded, base
        self.say, self.checkpointing = say, checkpointing
        self.first: tuple[SynthesisModel, Any] | None = (model, loss)  # let go once trained: one model at a time
        self.device, self.attributes, self.start_dates = model.device, model.attributes, model.start_dates
        self.extras: dict[int, tuple[dict[str, Any] | None, FineTuning | None]] = {}
        fitted = recipe.sampling.persistence == "auto"  # to the training persons' windows, read once
        self.persons_windows = evaluation_windows(recipe, persons).values if fitted else None

    def __call__(self, index: int, seed: int) -> tuple[SynthesisModel, TrainingResult]:
        recipe = self.recipe
        if index == 0:
            (model, loss), self.first = self.first, None
        else:
            torch.manual_seed(seed)
            loss = build_loss(recipe, self.registry, self.base)
            model = build_model(recipe, self.registry, self.device, self.attributes, self.base)
            model.start_dates = self.start_dates
        total = recipe.privacy.checkpoints if recipe.privacy else recipe.training.epochs
        label = "training" if recipe.training.candidates == 1 else f"training {index + 1}/{recipe.training.candidates}"
        on_epoch, trained = self.say.epoch_bar(total, label)
        with tuned_from(recipe, model, self.base) as tuned:
            checkpointing = candidate_checkpointing(self.checkpointing, index)
            result, privacy = train(
                recipe, model, loss, self.encoded, seed=seed, on_epoch=on_epoch, checkpointing=checkpointing
            )
        trained(result.epochs_run)
        self.extras[index] = (privacy, tuned)
        if self.persons_windows is not None:
            model.persistence = fit_persistence(recipe, model, self.persons_windows, seed)
            self.say.note(f"fitted sampling.persistence: {dict(zip(model.channels, model.persistence))}")
        return model, result


def changed(recipe: Recipe, **sections: Any) -> Recipe:
    """The recipe with whole sections replaced, validated again (a grad_clip with privacy is refused)."""
    return parse_recipe({**recipe.to_dict(), **sections}, recipe.source)


def with_device(recipe: Recipe, device: str) -> Recipe:
    """The recipe trained on ``device`` (cpu, cuda, cuda:N, mps, auto)."""
    return changed(recipe, training={**recipe.to_dict()["training"], "device": device})


def with_privacy(recipe: Recipe, epsilon: float, delta: float | None) -> Recipe:
    """The recipe trained with DP-SGD to (epsilon, delta): its own privacy settings otherwise, or the
    defaults; trained once, since every further candidate training would spend the budget again, and
    sampled with independent draws where persistence was to be fitted (``auto`` reads the training
    persons outside the accountant)."""
    raw = recipe.to_dict()
    privacy = {**(raw.get("privacy") or {}), "target_epsilon": epsilon}
    if delta is not None:
        privacy["target_delta"] = delta
    sampling = {**raw["sampling"], "persistence": 0.0} if recipe.sampling.persistence == "auto" else raw["sampling"]
    return changed(recipe, privacy=privacy, training={**raw["training"], "candidates": 1}, sampling=sampling)


@contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Torch's global generator (dropout) seeded for the block and restored after it: a fit is
    reproducible and leaves the caller's own random state as it found it."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield


def optional_records(
    privacy: dict[str, Any] | None,
    tuned: FineTuning | None,
    attributes: AttributeModel | None,
    persons_source: str | None,
) -> dict[str, Any]:
    """run.json's parts that only some fits have: what DP spent, the base tuned from, the persons table."""
    record: dict[str, Any] = {}
    if privacy:
        record["privacy"] = privacy
    if tuned:
        record["base"] = tuned.to_dict()
    if attributes:
        record["attributes"] = {"source": persons_source, "columns": attributes.columns, "notes": attributes.notes}
    return record


def fit_record(
    recipe: Recipe,
    loaded: LoadedData,
    data_fingerprint: str,
    split: dict[str, Any],
    encoded: Encoded,
    registry: Registry,
) -> dict[str, Any]:
    """What run.json says about a fit: recipe, data provenance, split and window counts."""
    return {
        "recipe": recipe.to_dict(),
        "recipe_file": str(recipe.source.resolve()) if recipe.source else None,
        "seed": recipe.seed,
        "versions": package_versions(registry),
        "data": {
            "source": loaded.source,
            "licence": loaded.licence,
            "citation": loaded.citation,
            "fingerprint": data_fingerprint,
            "persons": int(loaded.frame["person_id"].nunique()),
            "person_days": len(loaded.frame),
            "notes": loaded.notes,
            "clipped_values": encoded.clipped,
        },
        "split": split,
        "windows": dict(encoded.counts),
    }


def synthetic_values(
    frame: pd.DataFrame, channels: list[str], where: str = "synthetic"
) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic cohort's daily table back to (persons, days, C) and each person's first day;
    every person needs the same days."""
    missing = [c for c in ("person_id", "date", *channels) if c not in frame.columns]
    lengths = frame.groupby("person_id", sort=False).size() if not missing else None
    if missing or lengths.nunique() != 1:
        raise SynthwearError(
            f"{where}: not a synthetic cohort of this model (columns {', '.join(missing) or 'ok'}; "
            "every person must have the same number of days)"
        )
    frame = frame.sort_values(["person_id", "date"], kind="stable")
    values = frame[channels].to_numpy(float).reshape(len(lengths), int(lengths.iloc[0]), len(channels))
    dates = pd.to_datetime(frame["date"]).to_numpy().astype("datetime64[D]")
    return values, dates.reshape(len(lengths), -1)[:, 0]
