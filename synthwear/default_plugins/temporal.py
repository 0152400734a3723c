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

from synthwear.errors import SynthwearError
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


@dataclass
class TemporalConfig:
    max_lag: int = 7  # autocorrelation lags 1..max_lag (capped so that every lag has pairs in a window)


class TemporalStructure:
    def __init__(self, config: TemporalConfig = TemporalConfig()):
        self.config = config

    def evaluate(self, context: EvaluationContext) -> dict[str, Any]:
        days = context.holdout.values.shape[1]
        lags = list(range(1, min(self.config.max_lag, days - 2) + 1))
        if not lags:
            raise SynthwearError(f"evaluation.evaluators: temporal needs windows of at least 3 days, got {days}")
        sets = {"holdout": context.holdout, **scale_candidates(context)}
        acf, acf_error, shares, rows = {}, {}, {}, []
        for c, channel in enumerate(context.channels):
            acf[channel] = {name: autocorrelation(w.values[:, :, c], lags) for name, w in sets.items()}
            acf_error[channel] = {
                name: mean_abs_difference(acf[channel][name], acf[channel]["holdout"]) for name in REFERENCES
            }
            shares[channel] = {name: between_window_share(w.values[:, :, c]) for name, w in sets.items()}
            share_error = {
                name: None
                if shares[channel][name] is None or shares[channel]["holdout"] is None
                else abs(shares[channel][name] - shares[channel]["holdout"])
                for name in REFERENCES
            }
            rows.append(
                verdict_row(
                    f"ACF error (lags 1–{lags[-1]})",
                    channel,
                    acf_error[channel],
                    higher_is_better=False,
                    resolution=RESOLUTION,
                )
            )
            rows.append(
                verdict_row(
                    "between-person variance share error",
                    channel,
                    share_error,
                    higher_is_better=False,
                    resolution=RESOLUTION,
                )
            )
        n_channels = len(context.channels)
        matrices = {
            "values": {name: correlation_matrix(w.values.reshape(-1, n_channels)) for name, w in sets.items()},
            "changes": {
                name: correlation_matrix(np.diff(w.values, axis=1).reshape(-1, n_channels)) for name, w in sets.items()
            },
        }
        correlation_error = {}
        for kind, by_set in matrices.items():
            correlation_error[kind] = {
                name: mean_abs_difference(upper_triangle(by_set[name]), upper_triangle(by_set["holdout"]))
                for name in REFERENCES
            }
            rows.append(
                verdict_row(
                    f"cross-channel correlation error ({kind})",
                    None,
                    correlation_error[kind],
                    higher_is_better=False,
                    resolution=RESOLUTION,
                )
            )
        correlation = {
            kind: {
                name: np.where(np.isnan(m), None, m).tolist()
                for name, m in by_set.items()
                if name in ("holdout", "synthetic")
            }
            for kind, by_set in matrices.items()
        }
        return {
            "lags": lags,
            "channels": list(context.channels),
            "acf": acf,
            "acf_error": acf_error,
            "between_window_share": shares,
            "correlation": correlation,
            "correlation_error": correlation_error,
            "verdict": rows,
        }

    def report_section(self, results: dict[str, Any], run: dict[str, Any]) -> str:
        acf, lags, channels = results["acf"], results["lags"], results["channels"]
        acf_fig = make_subplots(rows=1, cols=len(acf), subplot_titles=list(acf), shared_yaxes=True)
        for i, curves in enumerate(acf.values(), start=1):
            for name, curve in curves.items():
                dash = {"ceiling": "dash", "floor": "dot"}.get(name, "solid")
                acf_fig.add_trace(
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
        acf_fig.update_layout(title="Autocorrelation within windows, by lag (days)")
        titles = [
            f"{kind}: {REFERENCE_LABELS[name]}" for kind in results["correlation"] for name in ("holdout", "synthetic")
        ]
        # a 2 x 2 grid (values / changes by real / synthetic) with the channels' names once per row
        # and column: four matrices in a row left each panel too narrow for its own axis labels
        heat = make_subplots(rows=2, cols=2, subplot_titles=titles, horizontal_spacing=0.08, vertical_spacing=0.16)
        for row, by_set in enumerate(results["correlation"].values(), start=1):
            for col, name in enumerate(("holdout", "synthetic"), start=1):
                matrix = np.array(by_set[name], dtype=float)
                heat.add_trace(
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
        heat.update_yaxes(autorange="reversed")
        heat.update_yaxes(showticklabels=False, col=2)
        heat.update_xaxes(showticklabels=False, row=1)
        heat.update_xaxes(tickangle=-30, row=2)
        heat.update_layout(title="Cross-channel correlation of values and of day-to-day changes")
        rows = [
            [escape(channel)] + [fmt(shares[name]) for name in ("holdout", *REFERENCES)]
            for channel, shares in results["between_window_share"].items()
        ]
        return (
            "<h2>Temporal and person structure</h2><p>Autocorrelation is measured within each window (each window "
            "centred on its own mean), so it shows day-to-day persistence, not differences between persons. The "
            "between-person share is the variance of window means over the total: synthetic persons should differ "
            "from each other as much as real ones do.</p>"
            + figure(acf_fig)
            + figure(heat, height=620)
            + table(["channel", "between-person share: real (holdout)", "synthetic", "ceiling", "floor"], rows)
        )


@hookimpl
def register_evaluators(register):
    register("temporal", TemporalStructure)
