"""Small generated daily tables for tests, and where the repository is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
CHANNELS = ["resting_hr", "sleep_minutes", "steps"]


def make_daily_frame(persons: int = 8, days: int = 40, seed: int = 0, missing: float = 0.1) -> pd.DataFrame:
    """A generated cohort with person-level offsets, day-to-day noise and scattered gaps."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(persons):
        base = (rng.normal(62, 6), rng.normal(420, 40), rng.normal(8000, 2500))
        for d in range(days):
            rows.append(
                {
                    "person_id": f"p{p:02d}",
                    "date": pd.Timestamp("2022-01-01") + pd.Timedelta(days=d),
                    "resting_hr": base[0] + rng.normal(0, 1.5),
                    "sleep_minutes": round(max(0.0, base[1] + rng.normal(0, 50))),
                    "steps": round(max(0.0, base[2] + rng.normal(0, 2000))),
                }
            )
    frame = pd.DataFrame(rows)
    holes = rng.random((len(frame), 3)) < missing
    frame[CHANNELS] = frame[CHANNELS].mask(holes)
    return frame.dropna(subset=CHANNELS, how="all").reset_index(drop=True)


def lifesnaps_cohort(persons: int, channels: list[str], seed: int = 0) -> pd.DataFrame:
    """Real small cohorts: ``persons`` LifeSnaps participants (drawn among the 40 with the most
    resting-HR days) and only ``channels``, the shape researchers start from."""
    frame = pd.read_csv(REPO / "synthwear" / "datasets" / "lifesnaps" / "daily.csv")
    richest = frame.groupby("person_id")["resting_hr"].count().sort_values(ascending=False).index[:40]
    chosen = np.random.default_rng(seed).choice(richest, persons, replace=False)
    small = frame.loc[frame["person_id"].isin(chosen), ["person_id", "date", *channels]]
    return small.dropna(subset=channels, how="all").reset_index(drop=True)


def small_cohort_recipe(data: Path, channels: list[str], **overrides) -> dict:
    """The default recipe (recipes/fitbit.yaml) cut to ``channels``, reading ``data``, trained briefly."""
    import yaml

    recipe = yaml.safe_load((REPO / "recipes" / "fitbit.yaml").read_text())
    recipe["data"] = {"path": str(data)}
    recipe["channels"] = {name: recipe["channels"][name] for name in channels}
    smoothing = recipe["loss"]["smoothing"]  # names only channels of the recipe
    recipe["loss"]["smoothing"] = {name: width for name, width in smoothing.items() if name in channels}
    recipe["training"].update(epochs=1, candidates=1)
    recipe["sampling"]["persons"] = 100
    recipe["generator"].update(n_layer=1, n_embd=16, n_head=2)
    return {**recipe, **overrides}
