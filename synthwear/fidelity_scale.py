"""The scale every fidelity metric is read on, and the rule that turns a position on it into a word.

A number such as "KSComplement 0.87" means little alone. Each metric is therefore computed three
times against the real holdout persons: for the synthetic cohort, for the real training persons
(the ceiling: as close as other real people get) and for independent days (the floor: every cell
drawn on its own from the training persons' observed values of that channel, so the marginals are
right but there is no day-to-day, cross-channel or person structure at all).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from synthwear.interfaces import EvaluationContext, Windows

REFERENCES = ("synthetic", "ceiling", "floor")
REFERENCE_NAMES = {
    "synthetic": "the synthetic cohort",
    "ceiling": "the real training persons",
    "floor": "independent days",
}
VERDICTS = ("good", "fair", "poor")


def independent_days(reference: Windows, n: int, seed: int) -> Windows:
    """``n`` windows shaped like ``reference``'s, each cell an independent draw of that channel's observed values."""
    _, days, n_channels = reference.values.shape
    rng = np.random.default_rng(seed)
    values = np.empty((n, days, n_channels))
    for c in range(n_channels):
        observed = reference.values[:, :, c][~np.isnan(reference.values[:, :, c])]
        values[:, :, c] = rng.choice(observed, (n, days)) if len(observed) else np.nan
    return Windows(values, np.array([f"independent-{i + 1}" for i in range(n)]))


def scale_candidates(context: EvaluationContext) -> dict[str, Windows]:
    """What each metric compares with the holdout windows: the synthetic cohort, the ceiling and the floor."""
    floor = independent_days(context.train, len(context.synthetic.values), context.seed)
    return {"synthetic": context.synthetic, "ceiling": context.train, "floor": floor}


def verdict(synthetic: float, ceiling: float, floor: float, *, higher_is_better: bool, resolution: float) -> str:
    """good / fair / poor by how far the synthetic score falls short of the ceiling.

    The shortfall is measured in bands of ``max(|ceiling - floor|, resolution)``: within a third of
    the band (or better than the ceiling) is good, within two thirds fair, beyond that poor. The
    resolution keeps the rule meaningful where the floor is as good as the ceiling (marginals).
    """
    shortfall = (ceiling - synthetic) if higher_is_better else (synthetic - ceiling)
    band = max(abs(ceiling - floor), resolution)
    if shortfall <= band / 3:
        return "good"
    return "fair" if shortfall <= 2 * band / 3 else "poor"


def verdict_row(
    metric: str,
    channel: str | None,
    scores: dict[str, float | None],
    *,
    higher_is_better: bool,
    resolution: float,
    **extra: Any,
) -> dict[str, Any]:
    """One line of the report's verdict table, as stored in metrics.json under an evaluator's ``verdict``."""
    row: dict[str, Any] = {
        "metric": metric,
        "channel": channel,
        **{k: scores[k] for k in REFERENCES},
        "higher_is_better": higher_is_better,
        "resolution": resolution,
        **extra,
    }
    known = all(scores[k] is not None and np.isfinite(scores[k]) for k in REFERENCES)
    row["verdict"] = (
        verdict(
            scores["synthetic"],
            scores["ceiling"],
            scores["floor"],
            higher_is_better=higher_is_better,
            resolution=resolution,
        )
        if known
        else None
    )
    if not known:
        missing = [REFERENCE_NAMES[k] for k in REFERENCES if scores[k] is None or not np.isfinite(scores[k])]
        row["unavailable"] = f"no score for {' and '.join(missing)}: too few observed days or windows in this data"
    return row
