"""The peer synthesizers the benchmarks hold synthwear against, behind one small shape.

A peer is fitted on windows (N, T, C) of real values (NaN = missing) and samples windows of the same
length. SDV's PARSynthesizer (the ``bench`` extra) models each window as one sequence, ``day`` as
its index; it is the best-known open sequential synthesizer and what users compare us with.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd


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


def fit_par(windows: np.ndarray, channels: list[str], epochs: int):
    """A fitted PARSynthesizer and the seconds its fit took."""
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
