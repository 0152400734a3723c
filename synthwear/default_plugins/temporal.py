"""Temporal and person structure: what independent days cannot fake.

Per channel, the autocorrelation at lags 1..max_lag within windows; across channels, the
correlation of the values and of the day-to-day changes; and the share of a channel's variance
that lies between windows (each window is one person's days), which is near zero when every
synthetic person is the same average person. Each is compared with the holdout persons' own.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from html import escape
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from synthwear.fidelity_scale import REFERENCES, scale_candidates, verdict_row
from synthwear.hookspecs import hookimpl
from synthwear.interfaces import EvaluationContext
from synthwear.report.html import REFERENCE_COLOURS, REFERENCE_LABELS, figure, fmt, table

RESOLUTION = 0.02  # correlations and variance shares closer than this count as equal on the verdict scale


def autocorrelation(values: np.ndarray, lags: list[int]) -> list[float | None]:
    """(N, T) windows -> per lag, the correlation of (day t, day t+lag) pairs of the same window,
    each window centred on its own mean so that differences between persons do not count."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-missing windows give NaN means, dropped below
        centred = values - np.nanmean(values, axis=1, keepdims=True)
    out: list[float | None] = []
    for lag in lags:
        a, b = centred[:, :-lag].ravel(), centred[:, lag:].ravel()
        both = ~np.isnan(a) & ~np.isnan(b)
        usable = both.sum() > 2 and a[both].std() > 0 and b[both].std() > 0
        out.append(float(np.corrcoef(a[both], b[both])[0, 1]) if usable else None)
    return out


def correlation_matrix(rows: np.ndarray) -> np.ndarray:
    """(M, C) rows -> (C, C) Pearson correlations over pairwise-observed rows."""
    return pd.DataFrame(rows).corr().to_numpy()


def between_window_share(values: np.ndarray) -> float | None:
    """(N, T) windows -> variance of window means / (that + mean within-window variance)."""
    enough = (~np.isnan(values)).sum(axis=1) >= 2
    if enough.sum() < 2:
        return None
    between = np.nanmean(values[enough], axis=1).var()
    within = np.nanvar(values[enough], axis=1).mean()
    return float(between / (between + within)) if between + within > 0 else None


def mean_abs_difference(a: list[float | None] | np.ndarray, b: list[float | None] | np.ndarray) -> float | None:
    diff = np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float))
    return float(np.nanmean(diff)) if np.isfinite(diff).any() else None


def upper_triangle(matrix: np.ndarray) -> np.ndarray:
    return matrix[np.triu_indices_from(matrix, k=1)]


def channel_structure(sets: dict[str, np.ndarray], c: int, channel: str, lags: list[int]) -> dict[str, Any]:
    """One channel's autocorrelation by lag and between-person share, per set, with their errors
    against the holdout and the two verdict rows."""
    acf = {name: autocorrelation(values[:, :, c], lags) for name, values in sets.items()}
    shares = {name: between_window_share(values[:, :, c]) for name, values in sets.items()}
    acf_error = {name: mean_abs_difference(acf[name], acf["holdout"]) for name in REFERENCES}
    share_error = {
        name: None if shares[name] is None or shares["holdout"] is None else abs(shares[name] - shares["holdout"])
        for name in REFERENCES
    }
    verdict = [
        verdict_row(
            f"ACF error (lags 1–{lags[-1]})", channel, acf_error, higher_is_better=False, resolution=RESOLUTION
        ),
        verdict_row(
            "between-person variance share error", channel, share_error, higher_is_better=False, resolution=RESOLUTION
        ),
    ]
    return {"acf": acf, "acf_error": acf_error, "shares": shares, "verdict": verdict}


def cross_channel(sets: dict[str, np.ndarray]) -> dict[str, Any]:
    """Correlation matrices of the channels' values and of their day-to-day changes, per set (the
    holdout's and the synthetic one's kept for the report), their errors and verdict rows."""
    n_channels = next(iter(sets.values())).shape[2]
    matrices = {
        "values": {name: correlation_matrix(values.reshape(-1, n_channels)) for name, values in sets.items()},
        "changes": {
            name: correlation_matrix(np.diff(values, axis=1).reshape(-1, n_channels)) for name, values in sets.items()
        },
    }
    error = {
        kind: {
            name: mean_abs_difference(upper_triangle(by_set[name]), upper_triangle(by_set["holdout"]))
            for name in REFERENCES
        }
        for kind, by_set in matrices.items()
    }
    verdict = [
        verdict_row(
            f"cross-channel correlation error ({kind})",
            None,
            error[kind],
            higher_is_better=False,
            resolution=RESOLUTION,
        )
        for kind in matrices
    ]
    correlation = {
        kind: {
            name: np.where(np.isnan(m), None, m).tolist()
            for name, m in by_set.items()
            if name in ("holdout", "synthetic")
        }
        for kind, by_set in matrices.items()
    }
    return {"correlation": correlation, "correlation_error": error, "verdict": verdict}


WEEK = 7  # the default's longest lag: a weekly rhythm


@dataclass
class TemporalConfig:
    # autocorrelation lags 1..max_lag; unset: up to a week, fewer where windows are too short to pair days
    # a week apart (a lag the user asks for beyond the window is refused: it would silently go missing)
    max_lag: int | None = None

    def lags(self, days: int) -> list[int]:
        """The lags scored in windows of ``days`` days: 1..max_lag, or unset 1..7, shortened to days - 2 in
        short windows so that every lag has pairs of days that far apart."""
        return list(range(1, (self.max_lag or min(WEEK, days - 2)) + 1))


class TemporalStructure:
    def __init__(self, config: TemporalConfig = TemporalConfig()):
        self.config = config

    def check(self, channels: list[str], days: int) -> None:
        """At least one lag, and windows long enough to pair a day with one two days later (and with one
        max_lag days later)."""
        lag = self.config.max_lag
        if lag is not None and lag < 1:
            raise ValueError(f"max_lag must be at least 1, got {lag}")
        if days < 3:
            raise ValueError(f"needs windows of at least 3 days, got {days}")
        if lag is not None and lag > days - 2:
            raise ValueError(
                f"max_lag {lag} does not fit {days}-day windows (at most {days - 2}: lags need pairs of days)"
            )

    def evaluate(self, context: EvaluationContext) -> dict[str, Any]:
        days = context.holdout.values.shape[1]
        self.check(context.channels, days)
        lags = self.config.lags(days)
        sets = {"holdout": context.holdout.values, **{n: w.values for n, w in scale_candidates(context).items()}}
        within = [channel_structure(sets, c, channel, lags) for c, channel in enumerate(context.channels)]
        across = cross_channel(sets)
        return {
            "lags": lags,
            "channels": list(context.channels),
            "acf": {channel: part["acf"] for channel, part in zip(context.channels, within)},
            "acf_error": {channel: part["acf_error"] for channel, part in zip(context.channels, within)},
            "between_window_share": {channel: part["shares"] for channel, part in zip(context.channels, within)},
            "correlation": across["correlation"],
            "correlation_error": across["correlation_error"],
            "verdict": [row for part in within for row in part["verdict"]] + across["verdict"],
        }

    def report_section(self, results: dict[str, Any], run: dict[str, Any]) -> str:
        rows = [
            [escape(channel)] + [fmt(shares[name]) for name in ("holdout", *REFERENCES)]
            for channel, shares in results["between_window_share"].items()
        ]
        return (
            "<h2>Temporal and person structure</h2><p>Autocorrelation is measured within each window (each window "
            "centred on its own mean), so it shows day-to-day persistence, not differences between persons. The "
            "between-person share is the variance of window means over the total: synthetic persons should differ "
            "from each other as much as real ones do.</p>"
            + figure(acf_figure(results["acf"], results["lags"]))
            + figure(correlation_figure(results["correlation"], results["channels"]), height=620)
            + table(["channel", "between-person share: real (holdout)", "synthetic", "ceiling", "floor"], rows)
        )


def acf_figure(acf: dict[str, dict[str, list]], lags: list[int]) -> go.Figure:
    """One panel per channel: each set's autocorrelation by lag."""
    fig = make_subplots(rows=1, cols=len(acf), subplot_titles=list(acf), shared_yaxes=True)
    for i, curves in enumerate(acf.values(), start=1):
        for name, curve in curves.items():
            dash = {"ceiling": "dash", "floor": "dot"}.get(name, "solid")
            fig.add_trace(
                go.Scatter(
                    x=lags,
                    y=curve,
                    name=REFERENCE_LABELS[name],
                    mode="lines+markers",
                    showlegend=i == 1,
                    line=dict(color=REFERENCE_COLOURS[name], dash=dash),
                ),
                row=1,
                col=i,
            )
    fig.update_layout(title="Autocorrelation within windows, by lag (days)")
    return fig


def correlation_figure(correlation: dict[str, dict[str, list]], channels: list[str]) -> go.Figure:
    """A 2 x 2 grid (values / changes by real / synthetic) with the channels' names once per row and
    column: four matrices in a row left each panel too narrow for its own axis labels."""
    titles = [f"{kind}: {REFERENCE_LABELS[name]}" for kind in correlation for name in ("holdout", "synthetic")]
    fig = make_subplots(rows=2, cols=2, subplot_titles=titles, horizontal_spacing=0.08, vertical_spacing=0.16)
    for row, by_set in enumerate(correlation.values(), start=1):
        for col, name in enumerate(("holdout", "synthetic"), start=1):
            matrix = np.array(by_set[name], dtype=float)
            fig.add_trace(
                go.Heatmap(
                    z=matrix,
                    x=channels,
                    y=channels,
                    zmin=-1,
                    zmax=1,
                    colorscale="RdBu",
                    reversescale=True,
                    showscale=row == col == 1,
                    text=np.round(matrix, 2),
                    texttemplate="%{text}",
                ),
                row=row,
                col=col,
            )
    fig.update_yaxes(autorange="reversed")
    fig.update_yaxes(showticklabels=False, col=2)
    fig.update_xaxes(showticklabels=False, row=1)
    fig.update_xaxes(tickangle=-30, row=2)
    fig.update_layout(title="Cross-channel correlation of values and of day-to-day changes")
    return fig


@hookimpl
def register_evaluators(register):
    register("temporal", TemporalStructure)
