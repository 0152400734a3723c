"""Train on synthetic, test on real (TSTR): is the synthetic cohort good enough to fit a model on?

A next-day predictor of one channel (resting heart rate by default) from the previous ``lags`` days
of every channel is fitted on a cohort's windows and scored on the real holdout persons. Fitted on
the real training persons it gives the ceiling, on independent days the floor; persistence
(tomorrow = today) is the no-learning baseline. All are scored on the same holdout days: those whose
target and previous-day target are both observed. The predictor: scikit-learn's
HistGradientBoostingRegressor with absolute-error loss (fixed seed), which handles missing inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from synthwear.errors import NotEstimable
from synthwear.fidelity_scale import REFERENCES, scale_candidates, verdict_row
from synthwear.hookspecs import hookimpl
from synthwear.interfaces import EvaluationContext
from synthwear.report.html import compared, fmt, table


def next_day_samples(values: np.ndarray, target: int, lags: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, T, C) windows -> inputs (M, lags*C), next-day target (M,), previous-day target (M,),
    one sample per window and day t >= lags whose target is observed."""
    n, days, n_channels = values.shape
    inputs = np.stack([values[:, t - lags : t].reshape(n, -1) for t in range(lags, days)], axis=1).reshape(
        -1, lags * n_channels
    )
    targets = values[:, lags:, target].reshape(-1)
    previous = values[:, lags - 1 : -1, target].reshape(-1)
    keep = ~np.isnan(targets)
    return inputs[keep], targets[keep], previous[keep]


@dataclass
class TSTRConfig:
    target: str = "resting_hr"  # the channel predicted for the next day
    lags: int = 7  # previous days of every channel the predictor sees


class TrainSyntheticTestReal:
    def __init__(self, config: TSTRConfig = TSTRConfig()):
        self.config = config

    def check(self, channels: list[str], days: int) -> None:
        """The target is a channel, and the lags leave a day to predict in a window of ``days`` days."""
        if self.config.target not in channels:
            raise ValueError(f"target {self.config.target!r} is not a channel (channels: {', '.join(channels)})")
        if not 0 < self.config.lags < days:
            raise ValueError(
                f"lags must be between 1 and {days - 1} (the window has {days} days), got {self.config.lags}"
            )

    def evaluate(self, context: EvaluationContext) -> dict[str, Any]:
        target, lags = self.config.target, self.config.lags
        self.check(context.channels, context.holdout.values.shape[1])
        c = context.channels.index(target)
        test_x, test_y, yesterday = next_day_samples(context.holdout.values, c, lags)
        scored = ~np.isnan(yesterday)
        if not scored.any():
            raise NotEstimable(
                f"no holdout day has {target} observed on it and on the day before: nothing to score a forecast on"
            )
        mae: dict[str, float | None] = {}
        samples: dict[str, int] = {}
        for name, windows in scale_candidates(context).items():
            x, y, _ = next_day_samples(windows.values, c, lags)
            samples[name] = len(y)
            if len(y) < 2 or not scored.any():
                mae[name] = None
                continue
            model = HistGradientBoostingRegressor(loss="absolute_error", random_state=context.seed)
            with threadpool_limits(1):  # small fits: OpenMP threads cost far more than they save, worst on busy CPUs
                prediction = model.fit(x, y).predict(test_x[scored])
            mae[name] = float(np.abs(prediction - test_y[scored]).mean())
        persistence = float(np.abs(yesterday[scored] - test_y[scored]).mean()) if scored.any() else None
        resolution = 0.05 * mae["ceiling"] if mae["ceiling"] else 0.0
        row = verdict_row(
            f"TSTR next-day MAE ({target})",
            target,
            mae,
            higher_is_better=False,
            resolution=resolution,
            persistence=persistence,
        )
        return {
            "target": target,
            "lags": lags,
            "mae": mae,
            "persistence_mae": persistence,
            "training_samples": samples,
            "test_days": int(scored.sum()),
            "verdict": [row],
        }

    def report_section(self, results: dict[str, Any], run: dict[str, Any]) -> str:
        mae, persistence = results["mae"], results["persistence_mae"]
        labels = {
            "synthetic": "synthetic cohort (TSTR)",
            "ceiling": "real training persons (ceiling)",
            "floor": "independent days (floor)",
        }
        rows = [
            [labels[name], compared(mae[name], persistence, True), fmt(results["training_samples"][name])]
            for name in REFERENCES
        ]
        rows.append(["persistence: tomorrow = today (no training)", fmt(persistence), "–"])
        return (
            f"<h2>Train on synthetic, test on real</h2><p>A next-day <code>{results['target']}</code> predictor "
            f"(gradient-boosted trees on the previous {results['lags']} days of every channel) is trained on each "
            f"cohort and scored on {results['test_days']:,} days of the real holdout persons. Mean absolute error "
            "in the channel's units; green where it beats persistence.</p>"
            + table(["trained on", "MAE on real holdout", "training samples"], rows)
        )


@hookimpl
def register_evaluators(register):
    register("tstr", TrainSyntheticTestReal)
