"""Long horizons: how fast a saved model samples a year per person, and whether moving the window
several days at a time (``SynthesisModel.generate(slide=)``, what lets the KV cache serve most days)
changes what late days look like.

    synthwear run recipes/fitbit.yaml                      # the model: runs/fitbit/model
    python benchmarks/long_horizon.py runs/fitbit/model    # prints a table: persons/s and distance per slide

For each slide the model samples ``--persons`` persons of ``--days`` days (timed; ``slide=1`` twice,
with two seeds). One late window per person (after the first two windows) is scored by the
discriminative evaluator against those of ``slide=1``: the row of the second ``slide=1`` sample is
what two samples of the same sampler score, the yardstick for the others. Every slide draws with
its own seed: samples that share one are paired person by person, which a cross-validated classifier
reads as a difference.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from synthwear import Synthesizer
from synthwear.default_plugins.discriminative import DiscriminativeScore


def late_windows(values: np.ndarray, days: int, seed: int = 0) -> np.ndarray:
    """(N, T, C) persons -> one ``days``-day window per person, starting on a random day after the first
    two windows. One per person: windows of one person look alike, and a cross-validated classifier
    that sees some of them in training recognises the person in the rest, whichever sampler drew them."""
    starts = np.random.default_rng(seed).integers(2 * days, values.shape[1] - days + 1, len(values))
    return values[np.arange(len(values))[:, None], starts[:, None] + np.arange(days)]


def timed_sample(synth: Synthesizer, persons: int, days: int, slide: int, seed: int) -> tuple[np.ndarray, float]:
    """The model's own sampling temperatures (its recipe's), ``slide`` days at a time."""
    model, sampling = synth.fitted, synth.recipe.sampling
    clock = time.perf_counter()
    values = model.generate(
        persons,
        days,
        temperature=sampling.temperatures(model.channels),
        summary_temperature=sampling.summary_temperatures(model.channels),
        seed=seed,
        slide=slide,
    )
    return values, time.perf_counter() - clock


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="a saved model folder (synthwear run writes RUN/model)")
    parser.add_argument("--persons", type=int, default=1000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--slides", type=int, nargs="+", help="default: 1, 5, half the window, the longest")
    args = parser.parse_args(argv)
    synth = Synthesizer.load(args.model)
    window = synth.fitted.window_days
    slides = args.slides or sorted({1, min(5, window - 1), window // 2, window - 1})
    if args.days < 3 * window:
        parser.error(f"--days must be at least three windows ({3 * window}) to have late days to compare")
    print(f"{args.persons} persons x {args.days} days, {window}-day windows, torch threads {torch.get_num_threads()}")
    exact, exact_s = timed_sample(synth, args.persons, args.days, 1, seed=0)
    reference = late_windows(exact, window)
    rows = [("1 (another seed)", *timed_sample(synth, args.persons, args.days, 1, seed=1))]
    rows += [(str(s), *timed_sample(synth, args.persons, args.days, s, seed=100 + s)) for s in slides if s != 1]
    print("| slide | persons/s | speed-up over slide 1 | discriminative against slide 1, a late window ↓ | accuracy |")
    print("|---|---|---|---|---|")
    print(f"| 1 | {args.persons / exact_s:,.1f} | 1.0× | – | – |")
    for label, values, seconds in rows:
        found = DiscriminativeScore().cross_validate(reference, late_windows(values, window, seed=1), seed=0)
        speed = f"{args.persons / seconds:,.1f} | {exact_s / seconds:.1f}×"
        print(f"| {label} | {speed} | {found['score']:.3f} | {found['accuracy']:.3f} |")


if __name__ == "__main__":
    main()
