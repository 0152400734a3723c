"""The paper's sequence similarity: cosine similarity and DTW distance, generated versus real.

Definition (the paper gives none precisely, so this is ours, fixed and documented): for each
holdout window, the model is primed with its first ``primed_days`` real days and generates the
rest; the generated continuation is compared with the real one, per channel, in the channel's
own units. Windows whose real continuation has a gap are skipped for that channel. Two baselines
are scored identically: persistence (the last primed value repeated) and another person (the real
continuation of a holdout window of a different person). Summaries: cosine averaged over
channels, DTW summed over channels (so, as in the paper, steps dominate it).
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

import numpy as np
import pandas as pd

from synthwear.hookspecs import hookimpl
from synthwear.interfaces import EvaluationContext
from synthwear.report.html import fmt, table


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of (N, T) arrays (0 where a row is all zeros)."""
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.where(norms > 0, (a * b).sum(axis=1) / np.where(norms > 0, norms, 1), 0.0)


def dtw_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dynamic-time-warping distance of (N, T) arrays with absolute-difference cost."""
    n, t = a.shape
    cost = np.abs(a[:, :, None] - b[:, None, :])  # (N, T, T)
    acc = np.full((n, t + 1, t + 1), np.inf)
    acc[:, 0, 0] = 0.0
    for i in range(1, t + 1):
        for j in range(1, t + 1):
            acc[:, i, j] = cost[:, i - 1, j - 1] + np.minimum(
                np.minimum(acc[:, i - 1, j], acc[:, i, j - 1]), acc[:, i - 1, j - 1]
            )
    return acc[:, t, t]


def other_person_rows(person: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """For each row, a random row of a different person (None if there is only one person)."""
    if len(np.unique(person)) < 2:
        return None
    pick = rng.integers(0, len(person), len(person))
    for _ in range(1000):
        clash = person[pick] == person
        if not clash.any():
            return pick
        pick[clash] = rng.integers(0, len(person), int(clash.sum()))
    return None


@dataclass
class SimilarityConfig:
    primed_days: int = 7  # real days the model continues from; the rest of the window is generated
    temperature: float = 1.0  # sampling temperature for the generated continuation


class PairedSimilarity:
    def __init__(self, config: SimilarityConfig = SimilarityConfig()):
        self.config = config

    def check(self, channels: list[str], days: int) -> None:
        """Some real days to prime with and some to generate: 1 <= primed_days < the window's days."""
        if not 0 < self.config.primed_days < days:
            raise ValueError(
                f"primed_days must be between 1 and {days - 1} (the window has {days} days), got {self.config.primed_days}"
            )

    def evaluate(self, context: EvaluationContext) -> dict[str, Any]:
        real = context.holdout.values
        k = self.config.primed_days
        self.check(context.channels, real.shape[1])
        generated = context.model.generate(  # complete: a continuation to compare needs every day
            len(real),
            real.shape[1],
            prime=real[:, :k],
            start=context.holdout.start,
            attributes=context.holdout.attributes,
            complete=True,
            temperature=self.config.temperature,
            seed=context.seed,
        )
        last_primed = pd.DataFrame(real[:, :k].transpose(0, 2, 1).reshape(-1, k)).ffill(axis=1).to_numpy()[:, -1]
        persistence = np.repeat(last_primed.reshape(len(real), 1, -1), real.shape[1] - k, axis=1)
        other = other_person_rows(context.holdout.person, np.random.default_rng(context.seed))
        candidates = {"model": generated[:, k:], "persistence": persistence}
        if other is not None:
            candidates["other_person"] = real[other, k:]
        truth = real[:, k:]
        per_channel: dict[str, Any] = {}
        for c, channel in enumerate(context.channels):
            usable = ~np.isnan(truth[:, :, c]).any(axis=1)
            for candidate in candidates.values():
                usable &= ~np.isnan(candidate[:, :, c]).any(axis=1)
            per_channel[channel] = {"windows": int(usable.sum())}
            if not usable.any():
                per_channel[channel]["unavailable"] = (
                    "no holdout window has this channel observed on every day of its continuation"
                )
            for label, candidate in candidates.items():
                a, b = candidate[usable, :, c], truth[usable, :, c]
                per_channel[channel][label] = {
                    "cosine": float(cosine_similarity(a, b).mean()) if usable.any() else None,
                    "dtw": float(dtw_distance(a, b).mean()) if usable.any() else None,
                }
        summary = {}
        for label in candidates:
            cosines = [v[label]["cosine"] for v in per_channel.values() if v[label]["cosine"] is not None]
            dtws = [v[label]["dtw"] for v in per_channel.values() if v[label]["dtw"] is not None]
            summary[label] = {
                "cosine": float(np.mean(cosines)) if cosines else None,
                "dtw": float(np.sum(dtws)) if dtws else None,
            }
        if not any(channel["windows"] for channel in per_channel.values()):
            summary["unavailable"] = "no holdout window has a gap-free continuation in any channel"
        return {"primed_days": k, "summary": summary, "channels": per_channel}

    def report_section(self, results: dict[str, Any], run: dict[str, Any]) -> str:
        labels = [label for label in results["summary"] if label != "unavailable"]

        def scores(r: dict[str, Any]) -> list[str]:  # cosine, then DTW, per comparison
            return [fmt(r[label]["cosine"]) for label in labels] + [fmt(r[label]["dtw"], 1) for label in labels]

        rows = [[escape(channel), *scores(r), fmt(r["windows"])] for channel, r in results["channels"].items()]
        rows.append(["<b>all channels</b>", *scores(results["summary"]), ""])
        headers = (
            ["channel"] + [f"cosine: {label}" for label in labels] + [f"DTW: {label}" for label in labels] + ["windows"]
        )
        return (
            f"<h2>Generated versus real continuations</h2><p>The model continues each holdout window from its first "
            f"{results['primed_days']} real days; cosine similarity (higher is closer) and DTW distance (lower is closer) "
            f"against the real rest of the window, beside persistence and a different real person.</p>"
            + table(headers, rows)
        )


@hookimpl
def register_evaluators(register):
    register("similarity", PairedSimilarity)
