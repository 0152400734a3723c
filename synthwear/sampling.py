"""Sampling a synthetic cohort into a file: the request checked before any work, the file written
batch by batch.

A request a machine cannot serve (a billion persons, a million days) is refused in one line with
the estimate that rules it out, instead of running until it is killed; a large but possible one is
written as it is generated, so memory holds one batch of persons at a time.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from synthwear.errors import SynthwearError
from synthwear.model import SynthesisModel
from synthwear.tables import write_daily_tables

MAX_DAYS = 36_525  # a hundred years of days per synthetic person
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
    width = len(str(total or n))
    persons = np.repeat([f"{prefix}-{first + i + 1:0{width}d}" for i in range(n)], days)
    starts = np.broadcast_to(np.asarray(start, dtype="datetime64[D]"), (n,))
    dates = (starts[:, None] + np.arange(days).astype("timedelta64[D]")).reshape(-1)
    frame = pd.DataFrame(values.reshape(n * days, -1), columns=channels)
    frame.insert(0, "date", dates)
    frame.insert(0, "person_id", persons)
    return frame


def available_memory() -> int | None:
    """Bytes of memory free now, where the system says (Linux and most Unixes)."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_request(persons: int, days: int, channels: int, temperature: float | Sequence[float], output: Path) -> None:
    """Refuse, before any work, a request that is wrong or that this machine cannot serve."""
    for t in [temperature] if isinstance(temperature, float | int) else temperature:
        if not math.isfinite(t) or t < 0:
            raise SynthwearError(f"temperature must be a finite number >= 0 (0 takes the most likely bin), got {t}")
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
    disk = shutil.disk_usage(Path(output).resolve().parent).free
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
    seed: int,
    start_date: str | date | None = None,
    complete: bool = False,
    on_batch: Callable[[int], None] | None = None,
    batch_size: int = BATCH,
) -> None:
    """Generate and write the cohort batch by batch: the values one ``generate`` call with the same
    ``batch_size`` gives (the default is the pipeline's, so a run's synthetic.csv can be redrawn).
    ``start_date``: every person's first day (default: ``SynthesisModel.first_days``)."""
    starts = model.first_days(persons, seed, start_date)

    def frames() -> Iterator[pd.DataFrame]:
        first = 0
        for values in model.generate_batches(
            persons,
            days,
            temperature=temperature,
            summary_temperature=summary_temperature,
            seed=seed,
            start=starts,
            complete=complete,
            on_batch=on_batch,
            batch_size=batch_size,
        ):
            batch_starts = starts[first : first + len(values)]
            yield to_long_frame(values, model.channels, batch_starts, first=first, total=persons)
            first += len(values)

    write_daily_tables(frames(), output)
