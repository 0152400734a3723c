"""Per-channel marginals: does a synthetic day's value look like a real day's value?

Three distances between the observed values of the holdout persons and a cohort, per channel:
sdmetrics KSComplement (1 - the Kolmogorov-Smirnov statistic), sdmetrics TVComplement on the
recipe's own bins (the resolution the model works in), and the Wasserstein-1 distance after
standardising both by the holdout's mean and standard deviation (so channels are comparable).
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from scipy.stats import wasserstein_distance
from sdmetrics.single_column import KSComplement, TVComplement

from synthwear.fidelity_scale import REFERENCES, scale_candidates, verdict_row
from synthwear.hookspecs import hookimpl
from synthwear.interfaces import EvaluationContext
from synthwear.report.html import REAL_COLOUR, SYNTHETIC_COLOUR, figure, fmt, table

SCORES = {  # name -> (higher is better, resolution on the verdict scale)
    "ks_complement": (True, 0.05),
    "tv_complement": (True, 0.05),
    "wasserstein_sd": (False, 0.05),
}


@dataclass
class MarginalsConfig:
    histogram_bins: int = 30  # bars per channel in the report's histograms


class Marginals:
    def __init__(self, config: MarginalsConfig = MarginalsConfig()):
        self.config = config

    def evaluate(self, context: EvaluationContext) -> dict[str, Any]:
        candidates = scale_candidates(context)
        real = context.holdout.values
        real_tokens = context.model.tokenize(real)[0]
        tokens = {name: context.model.tokenize(w.values)[0] for name, w in candidates.items()}
        channels, histograms, rows = {}, {}, []
        for c, channel in enumerate(context.channels):
            truth = real[:, :, c][~np.isnan(real[:, :, c])]
            truth_bins = real_tokens[:, :, c][~np.isnan(real[:, :, c])]
            mean, sd = (truth.mean(), truth.std() or 1.0) if len(truth) else (0.0, 1.0)
            scores: dict[str, dict[str, float | None]] = {score: {} for score in SCORES}
            for name, windows in candidates.items():
                values = windows.values[:, :, c]
                observed = values[~np.isnan(values)]
                usable = len(observed) > 0 and len(truth) > 0
                scores["ks_complement"][name] = float(KSComplement.compute(truth, observed)) if usable else None
                scores["tv_complement"][name] = (
                    float(
                        TVComplement.compute(pd.Series(truth_bins), pd.Series(tokens[name][:, :, c][~np.isnan(values)]))
                    )
                    if usable
                    else None
                )
                scores["wasserstein_sd"][name] = (
                    float(wasserstein_distance((truth - mean) / sd, (observed - mean) / sd)) if usable else None
                )
            channels[channel] = scores
            rows += [
                verdict_row(score, channel, scores[score], higher_is_better=better, resolution=resolution)
                for score, (better, resolution) in SCORES.items()
            ]
            synthetic = context.synthetic.values[:, :, c]
            edges = np.histogram_bin_edges(
                np.concatenate([truth, synthetic[~np.isnan(synthetic)]]), self.config.histogram_bins
            )
            histograms[channel] = {
                "edges": edges.tolist(),
                "holdout": np.histogram(truth, edges, density=True)[0].tolist(),
                "synthetic": np.histogram(synthetic[~np.isnan(synthetic)], edges, density=True)[0].tolist(),
            }
        return {"channels": channels, "histograms": histograms, "verdict": rows}

    def report_section(self, results: dict[str, Any], run: dict[str, Any]) -> str:
        rows = [
            [escape(channel), escape(score)] + [fmt(scores[score][name]) for name in REFERENCES]
            for channel, scores in results["channels"].items()
            for score in SCORES
        ]
        histograms = results["histograms"]
        fig = make_subplots(rows=1, cols=len(histograms), subplot_titles=list(histograms))
        for i, h in enumerate(histograms.values(), start=1):
            centres = (np.array(h["edges"][:-1]) + np.array(h["edges"][1:])) / 2
            for label, colour in (("holdout", REAL_COLOUR), ("synthetic", SYNTHETIC_COLOUR)):
                fig.add_trace(
                    go.Bar(
                        x=centres,
                        y=h[label],
                        name=f"real ({label})" if label == "holdout" else label,
                        marker_color=colour,
                        opacity=0.55,
                        showlegend=i == 1,
                    ),
                    row=1,
                    col=i,
                )
        fig.update_layout(barmode="overlay", bargap=0, title="Share of days per value (density)")
        return (
            "<h2>Marginals</h2><p>How the values of single days are distributed: real holdout persons against the "
            "synthetic cohort. KSComplement and TVComplement (on the recipe's bins): 1 is identical. Wasserstein "
            "distance in standard deviations of the holdout: 0 is identical.</p>"
            + figure(fig)
            + table(["channel", "score", *REFERENCES], rows)
        )


@hookimpl
def register_evaluators(register):
    register("marginals", Marginals)
