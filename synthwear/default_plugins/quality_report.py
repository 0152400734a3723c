"""sdmetrics' own verdicts: its QualityReport on day rows and its sequence metrics on windows.

Day rows are the days of the windows with at least one channel observed. Column Pair Trends uses
``real_correlation_threshold = 0``: sdmetrics' default (0.5) leaves the score undefined when no
real pair of channels is that strongly correlated, which is the normal case for wearable days.
Sequence metrics treat each window as a sequence: InterRowMSAS (day-to-day changes) and
StatisticMSAS (window means) per channel, and SequenceLengthSimilarity of the observed days per
window, which shows whether a cohort has real data's missing days.
"""

from __future__ import annotations

from html import escape
from typing import Any

import numpy as np
import pandas as pd
from sdmetrics.column_pairs import InterRowMSAS, StatisticMSAS
from sdmetrics.reports import QualityReport
from sdmetrics.single_column import SequenceLengthSimilarity

from synthwear.fidelity_scale import REFERENCES, scale_candidates, verdict_row
from synthwear.hookspecs import hookimpl
from synthwear.interfaces import EvaluationContext, Windows
from synthwear.report.html import fmt, table

RESOLUTION = 0.05  # sdmetrics scores closer than this count as equal on the verdict scale
TABLE = "days"


def day_rows(windows: Windows, channels: list[str]) -> pd.DataFrame:
    """Windows as a long table: window key, then one column per channel; all-missing days left out."""
    n, days, _ = windows.values.shape
    frame = pd.DataFrame(windows.values.reshape(n * days, -1), columns=channels)
    frame.insert(0, "window", np.repeat(np.arange(n), days))
    return frame[frame[channels].notna().any(axis=1)].reset_index(drop=True)


def quality_scores(real: pd.DataFrame, other: pd.DataFrame, channels: list[str]) -> dict[str, float]:
    metadata = {"tables": {TABLE: {"columns": {c: {"sdtype": "numerical"} for c in channels}}}}
    report = QualityReport()
    report.real_correlation_threshold = 0
    report.generate({TABLE: real[channels]}, {TABLE: other[channels]}, metadata, verbose=False)
    properties = report.get_properties().set_index("Property")["Score"]
    return {
        "quality_score": float(report.get_score()),
        "column_shapes": float(properties["Column Shapes"]),
        "column_pair_trends": float(properties["Column Pair Trends"]),
    }


def sequence_scores(real: pd.DataFrame, other: pd.DataFrame, channels: list[str]) -> dict[str, float]:
    scores = {"sequence_length_similarity": float(SequenceLengthSimilarity.compute(real["window"], other["window"]))}
    for channel in channels:
        pairs = [(frame["window"], frame[channel]) for frame in (real, other)]
        scores[f"inter_row_msas:{channel}"] = float(InterRowMSAS.compute(*pairs))
        scores[f"statistic_msas_mean:{channel}"] = float(StatisticMSAS.compute(*pairs, statistic="mean"))
    return scores


class SDMetricsQuality:
    def evaluate(self, context: EvaluationContext) -> dict[str, Any]:
        channels = context.channels
        real = day_rows(context.holdout, channels)
        by_reference = {}
        for name, windows in scale_candidates(context).items():
            other = day_rows(windows, channels)
            by_reference[name] = {**quality_scores(real, other, channels), **sequence_scores(real, other, channels)}
        scores = {key: {name: by_reference[name][key] for name in REFERENCES} for key in by_reference["synthetic"]}
        rows = []
        for key, values in scores.items():
            metric, _, channel = key.partition(":")
            rows.append(verdict_row(metric, channel or None, values, higher_is_better=True, resolution=RESOLUTION))
        return {"scores": scores, "verdict": rows}

    def report_section(self, results: dict[str, Any], run: dict[str, Any]) -> str:
        rows = [[escape(key)] + [fmt(values[name]) for name in REFERENCES] for key, values in results["scores"].items()]
        return (
            "<h2>sdmetrics quality</h2><p>sdmetrics' QualityReport on day rows (Column Shapes; Column Pair Trends "
            "with <code>real_correlation_threshold = 0</code>) and its sequence metrics on windows, each against the "
            "real holdout persons. All scores run from 0 to 1 (identical).</p>" + table(["score", *REFERENCES], rows)
        )


@hookimpl
def register_evaluators(register):
    register("sdmetrics_quality", SDMetricsQuality)
