"""Example traces: a few real holdout windows beside a few synthetic ones, for the eye.

The real windows come from holdout persons (never trained on) and are the most completely observed
ones, picked with the run's seed; they are written to metrics.json so the report can show them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from synthwear.hookspecs import hookimpl
from synthwear.interfaces import EvaluationContext
from synthwear.report.html import REAL_COLOUR, SYNTHETIC_COLOUR, figure


def as_json(values: np.ndarray) -> list:
    return np.where(np.isnan(values), None, values).tolist()


@dataclass
class TracesConfig:
    examples: int = 3  # windows shown per side


class ExampleTraces:
    def __init__(self, config: TracesConfig = TracesConfig()):
        self.config = config

    def evaluate(self, context: EvaluationContext) -> dict[str, Any]:
        rng = np.random.default_rng(context.seed)
        real = context.holdout.values
        observed = (~np.isnan(real)).mean(axis=(1, 2))
        ranked = sorted(range(len(real)), key=lambda i: (-observed[i], rng.random()))  # seeded tie-break
        chosen = ranked[: self.config.examples]
        synthetic = context.synthetic.values
        picked = rng.choice(len(synthetic), min(self.config.examples, len(synthetic)), replace=False)
        return {
            "channels": list(context.channels),
            "holdout": as_json(real[chosen]),
            "synthetic": as_json(synthetic[picked]),
        }

    def report_section(self, results: dict[str, Any], run: dict[str, Any]) -> str:
        channels = results["channels"]
        fig = make_subplots(
            rows=len(channels),
            cols=2,
            shared_xaxes=True,
            vertical_spacing=0.06,
            column_titles=["real (holdout persons)", "synthetic persons"],
            row_titles=channels,
        )
        for col, (side, colour) in enumerate((("holdout", REAL_COLOUR), ("synthetic", SYNTHETIC_COLOUR)), start=1):
            windows = np.array(results[side], dtype=float)
            for k, window in enumerate(windows):
                for c in range(len(channels)):
                    fig.add_trace(
                        go.Scatter(
                            x=np.arange(1, len(window) + 1),
                            y=window[:, c],
                            mode="lines+markers",
                            marker=dict(size=4),
                            opacity=1 - 0.25 * k,
                            line=dict(color=colour),
                            name=f"{side} {k + 1}",
                            legendgroup=f"{side}{k}",
                            showlegend=c == 0,
                        ),
                        row=c + 1,
                        col=col,
                    )
            for c in range(len(channels)):  # the same y range on both sides, so the eye compares like with like
                both = np.concatenate(
                    [np.array(results[s], dtype=float)[:, :, c].ravel() for s in ("holdout", "synthetic")]
                )
                span = [np.nanmin(both), np.nanmax(both)] if np.isfinite(both).any() else None
                fig.update_yaxes(range=span, row=c + 1, col=col)
        fig.update_xaxes(title_text="day", row=len(channels))
        fig.update_layout(showlegend=False)
        return (
            "<h2>Real and synthetic traces</h2><p>The real windows are from <b>holdout persons</b>, never trained "
            "on (the most completely observed ones); gaps are missing days. Each line is one person's window.</p>"
            + figure(fig, height=170 * len(channels) + 80)
        )


@hookimpl
def register_evaluators(register):
    register("traces", ExampleTraces)
