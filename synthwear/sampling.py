"""Sampling a synthetic cohort into a file: the request checked before any work, the file written
batch by batch.

A request a machine cannot serve (a billion persons, a million days) is refused in one line with
the estimate that rules it out, instead of running until it is killed; a large but possible one is
written as it is generated, so memory holds one batch of persons at a time.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from synthwear.attributes import AttributeModel
from synthwear.behaviour import Acceptance, DayCondition, batches_meeting, day_conditions
from synthwear.conditions import Conditions, parse_quota, quota_cells, quotas_from_mapping
from synthwear.errors import SynthwearError
from synthwear.model import SynthesisModel
from synthwear.recipe import MAX_DAYS, Recipe, temperature_problem
from synthwear.tables import LAST_DAY, nearest_existing, write_daily_table, write_daily_tables

BATCH = 4096  # persons generated at once (SynthesisModel.generate_batches' default)
BYTES_PER_CELL = 24  # working memory per person-day and channel while a batch is generated and tabled
CSV_BYTES_PER_VALUE = 8  # a written value with its separator, on average
CSV_BYTES_PER_ROW = 32  # person id and date with separators


def to_long_frame(
    values: np.ndarray,
    channels: list[str],
    start: str | date | np.ndarray,
    prefix: str = "synthetic",
    *,
    first: int = 0,
    total: int | None = None,
) -> pd.DataFrame:
    """(N, days, C) sequences starting on ``start`` (one date, or one per person) -> long table
    person_id, date, channels (the input's schema); ``first`` and ``total`` number a batch's persons
    within the whole cohort."""
    n, days, _ = values.shape
    persons = np.repeat(synthetic_ids(n, prefix, first=first, total=total), days)
    starts = np.broadcast_to(np.asarray(start, dtype="datetime64[D]"), (n,))
    dates = (starts[:, None] + np.arange(days).astype("timedelta64[D]")).reshape(-1)
    frame = pd.DataFrame(values.reshape(n * days, -1), columns=channels)
    frame.insert(0, "date", dates)
    frame.insert(0, "person_id", persons)
    return frame


def synthetic_ids(n: int, prefix: str = "synthetic", *, first: int = 0, total: int | None = None) -> list[str]:
    """Ids of persons ``first .. first + n - 1`` of a cohort of ``total``: synthetic-001, ..."""
    width = len(str(total or n))
    return [f"{prefix}-{first + i + 1:0{width}d}" for i in range(n)]


def sample_persons(
    model: SynthesisModel,
    n: int,
    seed: int,
    *,
    where: Sequence[str] = (),
    where_from: str = "--where",
    quotas: Sequence[str] | dict | None = None,
    seed_table: pd.DataFrame | None = None,
    seed_source: str = "the seed table",
) -> pd.DataFrame | None:
    """Each synthetic person's attributes (drawn before their days), with ``person_id``; None for a
    model without attributes, where asking for conditions is a one-line error. Conditions are checked
    against the model before anything is drawn. ``seed_table``: one row per person, cells given kept.
    Conditions on a person's days (``mean(steps) > 8000``) are not the attributes' and are left to
    ``behaviour.batches_meeting``."""
    on_persons = Conditions(where, where_from).on_persons() if where else Conditions()
    asked = bool(on_persons) or bool(quotas) or seed_table is not None
    if model.attributes is None:
        if asked:
            raise SynthwearError(
                "this model has no person attributes (no data.persons, or trained under differential privacy): "
                "nothing to condition on"
            )
        return None
    if seed_table is not None:
        if on_persons or quotas:
            raise SynthwearError("a seed table says each person's attributes itself: give it without where or quotas")
        if seed_table.empty:
            raise SynthwearError(f"{seed_source}: no rows (one row per person to generate)")
        if "person_id" in seed_table.columns:
            raise SynthwearError(
                f"{seed_source}: has a 'person_id' column, but its rows are persons still to generate, who get ids "
                "of their own (synthetic-1, ...): remove the column"
            )
        frame = model.attributes.sample_rows(seed_table, seed=seed, source=seed_source)
    else:
        _, parsed = parse_conditions((), quotas, where_from=where_from)  # the conditions are parsed above
        frame = model.attributes.sample(n, seed=seed, where=on_persons or None, quotas=parsed or None)
    frame.insert(0, "person_id", synthetic_ids(len(frame)))
    return frame


def recipe_windows(
    recipe: Recipe, model: SynthesisModel, n: int, seed: int, persistence: Sequence[float] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``n`` windows of the recipe's length drawn with its sampling settings and no conditions: what a
    trained model is judged by before release (``training.candidates``, ``sampling.persistence: auto``).
    ``persistence`` replaces the recipe's. Returns the values, each person's first day and their
    attribute codes (None without attributes)."""
    sampling = recipe.sampling
    persons = sample_persons(model, n, seed)
    codes = None if persons is None else model.attributes.encode(persons, source="synthetic persons")
    starts = model.first_days(n, seed, sampling.start_date)
    values = model.generate(
        n,
        recipe.windows.days,
        temperature=sampling.temperatures(model.channels),
        summary_temperature=sampling.summary_temperatures(model.channels),
        persistence=sampling.persistences(model.channels, model.persistence) if persistence is None else persistence,
        seed=seed,
        start=starts,
        attributes=codes,
        complete=sampling.complete,
    )
    return values, starts, codes


def parse_conditions(
    where: Sequence[str],
    quotas: Sequence[str] | dict | None,
    *,
    where_from: str = "--where",
    quotas_from: str = "quotas",
) -> tuple[Conditions | None, list]:
    """``where`` conditions and quotas (strings "gender=female:0.5" or a mapping) parsed: a syntax
    error is one line, naming where it was written, before any training or sampling; columns and
    values are checked against the attribute model when sampling."""
    conditions = Conditions(where, where_from) if where else None
    if isinstance(quotas, dict):
        return conditions, quotas_from_mapping(quotas, quotas_from)
    return conditions, [parse_quota(q) for q in quotas or ()]


def parse_recipe_conditions(
    where: Sequence[str], quotas: Sequence[str] | dict | None, recipe: str
) -> tuple[Conditions | None, list]:
    """``parse_conditions`` for a recipe's own ``sampling.where`` and ``sampling.quotas``: messages
    name the recipe and the field."""
    return parse_conditions(
        where, quotas, where_from=f"{recipe}: sampling.where", quotas_from=f"{recipe}: sampling.quotas"
    )


def check_conditions(
    attributes: AttributeModel | None,
    where: Sequence[str],
    quotas: Sequence[str] | dict | None,
    recipe: str,
    channels: dict[str, tuple[float, float]],
    days: int | None = None,
) -> None:
    """A recipe's ``sampling.where`` and ``sampling.quotas`` against the fitted attribute model, the
    channels and the ``days`` per person, before training: an unknown column or channel, an unseen
    category, or conditions on attributes without attributes are one line. ``channels``: each
    channel's range."""
    conditions, parsed = parse_recipe_conditions(where, quotas, recipe)
    day_conditions(conditions, list(channels), list(channels.values()), days)
    if not (conditions and conditions.on_persons()) and not quotas:
        return
    if attributes is None:
        raise SynthwearError(
            f"{recipe}: sampling.where on attributes and sampling.quotas need person attributes (data.persons, "
            "and no privacy section)"
        )
    base = conditions.check(attributes) if conditions else {}
    if parsed:
        quota_cells(parsed, 100, attributes, base)


def available_memory() -> int | None:
    """Bytes of memory free now, where the system says (Linux and most Unixes)."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_last_day(starts: np.ndarray, days: int, what: str) -> None:
    """Refuse, before drawing, persons whose days would run past the last date a table can hold
    (pandas' nanosecond clock): the cohort would be written but no reader, synthwear included, could
    read it back."""
    if not len(starts) or not days:
        return
    last = np.asarray(starts, dtype="datetime64[D]").max() + np.timedelta64(days - 1, "D")
    if last > np.datetime64(LAST_DAY.date(), "D"):
        raise SynthwearError(
            f"{what}: {days:,} days would run to {last}, past {LAST_DAY.date()}, the last date a table can hold; "
            "start earlier or ask for fewer days"
        )


def check_request(persons: int, days: int, channels: int, temperature: float | Sequence[float], output: Path) -> None:
    """Refuse, before any work, a request that is wrong or that this machine cannot serve."""
    for t in [temperature] if isinstance(temperature, float | int) else temperature:
        if temperature_problem(t):
            raise SynthwearError(temperature_problem(t))
    if days > MAX_DAYS:
        raise SynthwearError(f"--days {days:,} is more than a hundred years ({MAX_DAYS:,} days) per person")
    batch_bytes = min(persons, BATCH) * days * channels * BYTES_PER_CELL
    free = available_memory()
    if free is not None and batch_bytes > free / 2:
        raise SynthwearError(
            f"{days:,} days per person needs about {batch_bytes / 2**30:.1f} GiB per batch of {min(persons, BATCH):,} "
            f"persons, more than half the {free / 2**30:.1f} GiB of memory free; ask for fewer days"
        )
    file_bytes = persons * days * (CSV_BYTES_PER_ROW + channels * CSV_BYTES_PER_VALUE)
    disk = shutil.disk_usage(nearest_existing(Path(output).resolve().parent)).free  # a run folder is made later
    if file_bytes > disk:
        raise SynthwearError(
            f"{output}: {persons:,} persons × {days:,} days make a file of about {file_bytes / 2**30:,.1f} GiB, "
            f"more than the {disk / 2**30:,.1f} GiB free there; ask for fewer persons or days"
        )


def sample_to_file(
    model: SynthesisModel,
    persons: int,
    days: int,
    output: Path,
    *,
    temperature: float | Sequence[float],
    summary_temperature: float | Sequence[float] | None = None,
    persistence: float | Sequence[float] = 0.0,
    seed: int,
    start_date: str | date | None = None,
    complete: bool = False,
    persons_table: pd.DataFrame | None = None,
    on_progress: Callable[[float], None] | None = None,
    batch_size: int = BATCH,
    conditions: list[DayCondition] | None = None,
    tally: Acceptance | None = None,
) -> None:
    """Generate and write the cohort batch by batch: the values one ``generate`` call with the same
    ``batch_size`` gives (the default is the pipeline's, so a run's synthetic.csv can be redrawn).
    ``start_date``: every person's first day (default: ``SynthesisModel.first_days``); ``persons_table``:
    their attributes (``sample_persons``), written beside OUTPUT (``persons_path``); ``conditions`` on
    each person's days, met by drawing again (``behaviour``; ``tally`` counts the draws)."""
    starts = model.first_days(persons, seed, start_date)
    check_last_day(starts, days, str(output))
    codes = None if persons_table is None else model.attributes.encode(persons_table, source="synthetic persons")

    def frames() -> Iterator[pd.DataFrame]:
        first = 0
        for values in batches_meeting(
            model,
            conditions or [],
            persons,
            days,
            tally=tally,
            temperature=temperature,
            summary_temperature=summary_temperature,
            persistence=persistence,
            seed=seed,
            start=starts,
            attributes=codes,
            complete=complete,
            on_progress=on_progress,
            batch_size=batch_size,
        ):
            batch_starts = starts[first : first + len(values)]
            yield to_long_frame(values, model.channels, batch_starts, first=first, total=persons)
            first += len(values)

    write_daily_tables(frames(), output)
    if persons_table is not None:
        write_daily_table(persons_table, persons_path(output))


def persons_path(output: Path) -> Path:
    """Where a sampled cohort's persons table goes: cohort.csv -> cohort.persons.csv."""
    output = Path(output)
    return output.with_name(f"{output.stem}.persons{output.suffix}")
