"""Seconds per training step with person-level DP-SGD versus without, measured in one process.

Both trainings run through ``run_recipe`` on the same recipe and data (sampling and evaluation cut
to the minimum), so the difference is the training step: per-sample gradients, clipping and noise,
and the per-window loss. The two alternate ``--repeats`` times and each keeps its fastest run, the
one least disturbed by whatever else the machine is doing. A DP step holds about q x persons windows, a non-private step
``batch_size`` windows, so the table shows seconds per window too.

Usage: python benchmarks/dp_slowdown.py [RECIPE] [--steps N] [--epochs N] [--repeats N]
(default: recipes/fitbit-dp.yaml; its privacy section sets q, its training section the batch size)
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

from synthwear.pipeline import run_recipe
from synthwear.recipe import load_recipe, parse_recipe

REPO = Path(__file__).resolve().parents[1]


def timed_training(raw: dict, source: Path) -> tuple[float, int, int]:
    """Training seconds, steps and windows of one run of the recipe mapping ``raw``."""
    with tempfile.TemporaryDirectory() as folder:
        run = run_recipe(parse_recipe(raw, source=source), Path(folder) / "run").run
    training, windows = run["training"], run["windows"]["train"]["windows"]
    if "privacy" in run:
        steps = run["privacy"]["steps"]
        return training["seconds"], steps, round(training["windows_per_second"] * training["seconds"])
    batch = raw["training"]["batch_size"]
    return training["seconds"], training["epochs"] * math.ceil(windows / batch), training["epochs"] * windows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", nargs="?", type=Path, default=REPO / "recipes" / "fitbit-dp.yaml")
    parser.add_argument("--steps", type=int, default=100, help="DP steps to time")
    parser.add_argument("--epochs", type=int, default=3, help="non-private epochs to time")
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs of each; the fastest counts")
    args = parser.parse_args()
    raw = load_recipe(args.recipe).to_dict()
    if not raw.get("privacy"):
        parser.error(f"{args.recipe} has no privacy section")
    raw["evaluation"]["evaluators"] = []
    raw["sampling"]["persons"] = 1
    raw["privacy"].update(
        steps=args.steps, checkpoints=1
    )  # one validation pass, as an epoch of non-private training has
    # no early stop: time exactly these epochs
    public_raw = {
        **raw,
        "privacy": None,
        "training": {**raw["training"], "epochs": args.epochs, "patience": args.epochs},
    }
    runs: dict[str, list[tuple[float, int, int]]] = {"non-private": [], "DP-SGD": []}
    for _ in range(args.repeats):
        runs["DP-SGD"].append(timed_training(raw, args.recipe))
        runs["non-private"].append(timed_training(public_raw, args.recipe))
    rows = {label: min(timings, key=lambda t: t[0] / t[1]) for label, timings in runs.items()}
    print(f"{'training':<12} {'steps':>6} {'windows':>8} {'s/step':>8} {'ms/window':>10}")
    for label, (seconds, steps, windows) in rows.items():
        print(f"{label:<12} {steps:>6} {windows:>8} {seconds / steps:>8.4f} {1000 * seconds / windows:>10.2f}")
    per_step = [seconds / steps for seconds, steps, _ in rows.values()]
    per_window = [seconds / windows for seconds, _, windows in rows.values()]
    print(f"{'DP / non-private':<28} {per_step[1] / per_step[0]:>8.2f} {per_window[1] / per_window[0]:>10.2f}")


if __name__ == "__main__":
    main()
