"""Weekday effects and gaps: does the synthetic cohort keep the week's rhythm and miss days the way
real persons do?

Real persons walk more on Saturdays and miss sleep records on a quarter of their days; tools built
on synthetic data must see both. Per channel this compares the real holdout windows with the
synthetic ones on: the mean per weekday (and the Saturday-minus-weekdays difference, Monday to
Friday), the share of missing days, and the mean length of a run of missing days. Synthetic windows
are filtered as real ones are (``windows.min_observed``), so the shares are comparable.
"""

from __future__ import annotations

import warnings
from html import escape
from typing import Any

import numpy as np

from synthwear.covariates import calendar_codes
from synthwear.errors import NotEstimable
from synthwear.hookspecs import hookimpl
from synthwear.interfaces import EvaluationContext, Windows
from synthwear.report.html import fmt, table

SATURDAY = 5


def weekday_means(windows: Windows) -> np.ndarray:
    """(7, C) mean of each channel's observed values per weekday (NaN where a weekday has none)."""
    if windows.start is None:
        raise NotEstimable("the windows have no dates")
    days = windows.values.shape[1]
    weekday = calendar_codes(windows.start[:, None] + np.arange(days).astype("timedelta64[D]"), ("weekday",))[..., 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a weekday without observed values is NaN
        return np.stack([np.nanmean(windows.values[weekday == d], axis=0) for d in range(7)])


def gap_runs(values: np.ndarray) -> float | None:
    """Mean length of the runs of consecutive missing days of one channel (N, T); None without gaps."""
    missing = np.isnan(values).astype(np.int8)
    padded = np.pad(missing, ((0, 0), (1, 1)))
    starts = (np.diff(padded, axis=1) == 1).sum()
    return float(missing.sum() / starts) if starts else None


def observed_enough(windows: Windows, least: float) -> Windows:
    keep = (~np.isnan(windows.values)).mean(axis=(1, 2)) >= least
    start = None if windows.start is None else windows.start[keep]
    return Windows(windows.values[keep], windows.person[keep], start)


def channel_summary(real: Windows, synthetic: Windows, c: int, profiles: dict[str, np.ndarray] | None) -> dict:
    result: dict[str, Any] = {}
    for name, windows in (("real", real), ("synthetic", synthetic)):
        values = windows.values[..., c]
        entry = {"missing_share": float(np.isnan(values).mean()), "mean_gap_days": gap_runs(values)}
        if profiles is not None:
            profile = profiles[name][:, c]
            entry["weekday_means"] = [None if np.isnan(v) else float(v) for v in profile]
            entry["saturday_minus_weekdays"] = float(profile[SATURDAY] - np.nanmean(profile[:5]))
        result[name] = entry
    if profiles is not None and result["real"]["saturday_minus_weekdays"]:
        result["saturday_effect_ratio"] = (
            result["synthetic"]["saturday_minus_weekdays"] / result["real"]["saturday_minus_weekdays"]
        )
    result["missing_share_difference"] = result["synthetic"]["missing_share"] - result["real"]["missing_share"]
    return result


class CalendarAndGaps:
    def evaluate(self, context: EvaluationContext) -> dict[str, Any]:
        least = float(context.model.recipe.get("windows", {}).get("min_observed", 0.0))
        real, synthetic = context.holdout, observed_enough(context.synthetic, least)
        if len(synthetic.values) == 0:
            raise NotEstimable(f"no synthetic window has {least:.0%} of its cells observed")
        try:
            profiles = {"real": weekday_means(real), "synthetic": weekday_means(synthetic)}
        except NotEstimable:
            profiles = None
        channels = {name: channel_summary(real, synthetic, c, profiles) for c, name in enumerate(context.channels)}
        return {"channels": channels, "synthetic_windows": len(synthetic.values), "real_windows": len(real.values)}

    def report_section(self, results: dict[str, Any], run: dict[str, Any]) -> str:
        rows = []
        for name, r in results["channels"].items():
            real, synthetic = r["real"], r["synthetic"]
            rows.append(
                [
                    escape(name),
                    f"{fmt(real['missing_share'] * 100, 1)} % / {fmt(synthetic['missing_share'] * 100, 1)} %",
                    f"{fmt(real['mean_gap_days'], 2)} / {fmt(synthetic['mean_gap_days'], 2)}",
                    f"{fmt(real.get('saturday_minus_weekdays'), 1)} / {fmt(synthetic.get('saturday_minus_weekdays'), 1)}",
                ]
            )
        return (
            "<h2>Weekdays and gaps</h2><p>Real holdout / synthetic windows: the share of missing days, the mean "
            "length of a run of missing days, and Saturday's mean minus the Monday-to-Friday mean (channel units). "
            "A model without <code>windows.gaps</code> generates no gaps; one without "
            "<code>windows.calendar: [weekday]</code> is not told the weekday.</p>"
            + table(["channel", "missing days", "mean gap (days)", "Saturday − weekdays"], rows)
        )


@hookimpl
def register_evaluators(register):
    register("calendar_gaps", CalendarAndGaps)
