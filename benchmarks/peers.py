"""The peer synthesizers the benchmarks hold synthwear against, behind one small shape.

A peer is fitted on windows (N, T, C) of real values (NaN = missing) and samples windows of the same
length. SDV's PARSynthesizer (the ``bench`` extra) models each window as one sequence, ``day`` as
its index; it is the best-known open sequential synthesizer and what users compare us with. MOSTLY
AI's open engine (the ``mostly`` extra), an autoregressive network trained for a time budget, is
the other one they ask about; its TabularARGN also takes each window as one sequence, or, under its
own DP (benchmarks/privacy_utility.py), each person's whole record: its unit of privacy is the sequence.
"""

from __future__ import annotations

import time
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import torch


def sdv_installed() -> bool:
    try:
        import sdv  # noqa: F401
    except ImportError:
        return False
    return True


def par_windows_frame(windows: np.ndarray, channels: list[str]) -> pd.DataFrame:
    """Windows as PAR's long table: one sequence per window, ``day`` as its index."""
    n, days, _ = windows.shape
    frame = pd.DataFrame(windows.reshape(n * days, -1), columns=channels)
    frame.insert(0, "day", np.tile(np.arange(days), n))
    frame.insert(0, "window", np.repeat(np.arange(n), days))
    return frame


def fit_par(windows: np.ndarray, channels: list[str], seed: int, epochs: int):
    """A fitted PARSynthesizer and the seconds its fit took (PAR draws from torch's global generator,
    seeded here)."""
    from sdv.metadata import Metadata
    from sdv.sequential import PARSynthesizer

    columns = {
        "window": {"sdtype": "id"},
        "day": {"sdtype": "numerical"},
        **{c: {"sdtype": "numerical"} for c in channels},
    }
    metadata = Metadata.load_from_dict(
        {"tables": {"windows": {"columns": columns, "sequence_key": "window", "sequence_index": "day"}}}
    )
    synthesizer = PARSynthesizer(metadata, epochs=epochs, verbose=False, cuda=False)
    torch.manual_seed(seed)
    started = time.perf_counter()
    synthesizer.fit({"windows": par_windows_frame(windows, channels)})
    return synthesizer, time.perf_counter() - started


def sample_par(synthesizer, sequences: int, days: int, channels: list[str]) -> tuple[np.ndarray, float]:
    """(sequences, days, C) sampled windows and the seconds sampling took."""
    started = time.perf_counter()
    sampled = synthesizer.sample_sequences(sequences, sequence_length=days)["windows"]
    seconds = time.perf_counter() - started
    values = sampled.sort_values(["window", "day"])[channels].to_numpy(dtype=float)
    return values.reshape(sequences, days, len(channels)), seconds


@cache
def mostlyai_installed() -> bool:
    """Whether MOSTLY AI's engine imports here; asked once, since a broken install fails slowly (via transformers)."""
    try:
        import mostlyai.engine  # noqa: F401
    except ImportError:
        return False
    return True


def mostly_context(sequences: int) -> pd.DataFrame:
    """One context row per window, its key alone: TabularARGN takes sequences as a target table keyed
    into a context table, and a window has no attributes of its own to put there."""
    return pd.DataFrame({"window": np.arange(sequences)})


def fit_mostly(windows: np.ndarray, channels: list[str], seed: int, minutes: float):
    """A TabularARGN fitted on the windows, one sequence each, and the seconds its fit took. ``day`` is
    left out: the engine takes the rows' order within a window as its sequence order, so a generated
    day column would only add noise."""
    return fit_mostly_sequences(par_windows_frame(windows, channels).drop(columns="day"), seed, minutes)


def fit_mostly_sequences(sequences: pd.DataFrame, seed: int, minutes: float, differential_privacy: dict | None = None):
    """A TabularARGN fitted on CPU for at most ``minutes`` (it may stop sooner: early stopping, 100
    epochs, or its DP budget spent) on ``sequences`` (a ``window`` key 0..N-1, then one column per
    channel, each sequence's rows in day order), and the seconds its fit took. Under
    ``differential_privacy`` (the engine's DifferentialPrivacyConfig) a sequence is its unit of
    privacy."""
    from mostlyai.engine import TabularARGN
    from mostlyai.engine.domain import DifferentialPrivacyConfig

    model = TabularARGN(
        tgt_context_key="window",
        ctx_primary_key="window",
        ctx_data=mostly_context(int(sequences["window"].max()) + 1),
        max_training_time=minutes,
        differential_privacy=None
        if differential_privacy is None
        else DifferentialPrivacyConfig(**differential_privacy),
        device="cpu",
        random_state=seed,
        verbose=0,
    )
    started = time.perf_counter()
    model.fit(sequences)
    return model, time.perf_counter() - started


def sample_mostly(model, sequences: int, days: int, channels: list[str]) -> tuple[np.ndarray, float]:
    """(sequences, days, C) sampled windows (NaN = missing) and the seconds sampling took.

    The engine draws each sequence's length, so a window can come back longer than ``days`` (cut to
    its first ``days``) or shorter, even empty (the rest padded with NaN, as missing days). Windows are
    placed by their key, not by the order they come back in.
    """
    context = mostly_context(sequences)
    started = time.perf_counter()
    model.sample(ctx_data=context, device="cpu")
    seconds = time.perf_counter() - started
    sampled = generated_rows(model)
    day = sampled.groupby("window", sort=False).cumcount().to_numpy()
    window = pd.Index(context["window"].astype(str)).get_indexer(sampled["window"].astype(str))
    if (window < 0).any():
        raise ValueError("TabularARGN sampled a window key it was not given")
    kept = day < days
    values = np.full((sequences, days, len(channels)), np.nan)
    values[window[kept], day[kept]] = sampled.loc[kept, channels].to_numpy(dtype=float, na_value=np.nan)
    return values, seconds


def generated_rows(model) -> pd.DataFrame:
    """The engine's last generated rows in the order it wrote them: step by step, across all sequences
    at once. ``TabularARGN.sample`` returns them sorted by key with pandas' default, unstable sort,
    which can shuffle the days within a sequence, so they are read back from its documented output
    (parquet parts in the workspace's SyntheticData folder), where each sequence's rows are in order."""
    parts = sorted((Path(model.workspace_path_) / "SyntheticData").glob("*.parquet"))
    return pd.concat([pd.read_parquet(part) for part in parts], ignore_index=True)
