"""Next-day forecast error on holdout persons: the paper's headline MAE, beside persistence.

The model's forecast for day t is the median of its predicted distribution given days < t (the
median is the point forecast that minimises absolute error). Persistence ("tomorrow equals
today") is scored on exactly the same days, so the two numbers are comparable.
"""

from __future__ import annotations

from html import escape
from typing import Any

import numpy as np

from synthwear.hookspecs import hookimpl
from synthwear.interfaces import EvaluationContext
from synthwear.report.html import compared, fmt, table


def median_forecast(probabilities: np.ndarray, representatives: np.ndarray) -> np.ndarray:
    """(..., V) distributions over ids -> (...,) median, interpolating the CDF between id values."""
    cdf = np.cumsum(probabilities, axis=-1)
    above = np.clip((cdf < 0.5).sum(axis=-1), 0, len(representatives) - 1)
    below = np.clip(above - 1, 0, None)
    cdf_above = np.take_along_axis(cdf, above[..., None], -1)[..., 0]
    cdf_below = np.where(above > 0, np.take_along_axis(cdf, below[..., None], -1)[..., 0], 0.0)
    share = np.clip((0.5 - cdf_below) / np.maximum(cdf_above - cdf_below, 1e-12), 0, 1)
    lo, hi = representatives[below], representatives[above]
    return np.where(above > 0, lo + share * (hi - lo), hi)


class NextDayForecast:
    def evaluate(self, context: EvaluationContext) -> dict[str, Any]:
        values = context.holdout.values
        probabilities = context.model.next_day_probabilities(values, context.holdout.start, context.holdout.attributes)
        results: dict[str, Any] = {}
        for c, channel in enumerate(context.channels):
            forecast = median_forecast(probabilities[c], context.model.encoders[c].representatives())
            target, yesterday = values[:, 1:, c], values[:, :-1, c]
            scored = ~np.isnan(target) & ~np.isnan(yesterday)
            last = scored[:, -1]
            results[channel] = {
                "model_mae": mean_abs(forecast[:, 1:] - target, scored),
                "persistence_mae": mean_abs(yesterday - target, scored),
                "days_scored": int(scored.sum()),
                "last_day_model_mae": mean_abs(forecast[:, -1] - target[:, -1], last),
                "last_day_persistence_mae": mean_abs(yesterday[:, -1] - target[:, -1], last),
                "last_day_scored": int(last.sum()),
            }
        return results

    def report_section(self, results: dict[str, Any], run: dict[str, Any]) -> str:
        rows = [
            [
                escape(channel),
                compared(r["model_mae"], r["persistence_mae"], True),
                fmt(r["persistence_mae"]),
                fmt(r["days_scored"]),
                compared(r["last_day_model_mae"], r["last_day_persistence_mae"], True),
                fmt(r["last_day_persistence_mae"]),
            ]
            for channel, r in results.items()
        ]
        last = run["recipe"]["windows"]["days"]
        return (
            "<h2>Next-day forecast on holdout persons</h2><p>Mean absolute error in the channel's units; "
            "the model's median forecast against persistence (tomorrow = today), scored on the same days.</p>"
            + table(
                ["channel", "model MAE", "persistence MAE", "days", f"day-{last} model MAE", f"day-{last} persistence"],
                rows,
            )
        )


def mean_abs(errors: np.ndarray, mask: np.ndarray) -> float | None:
    return float(np.abs(errors[mask]).mean()) if mask.any() else None


@hookimpl
def register_evaluators(register):
    register("forecast", NextDayForecast)
