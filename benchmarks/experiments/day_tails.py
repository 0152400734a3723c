"""Sleep's and steps' days drawn at quantiles squeezed into [0, top], so that the top 1 − top of each
day's distribution is never drawn (the summary day, a person's level, untouched); persistence fitted
again for each setting. Per fold, the default recipe with one candidate, seed 0; every setting sampled
from the same training.

    python benchmarks/experiments/day_tails.py
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from common import default_recipe, folds, scored, summary

import synthwear.model
from synthwear import Synthesizer
from synthwear.persistence import fit_persistence
from synthwear.steps import evaluation_windows

TOPS = {"[0, 1] (the default)": 1.0, "[0, 0.98]": 0.98, "[0, 0.95]": 0.95}
SQUEEZED = ("sleep_minutes", "steps")


@contextmanager
def days_squeezed(channels: list[str], top: float):
    """``Draw.day`` with the named channels' quantiles scaled into [0, top] on every day but the summary."""
    day = synthwear.model.Draw.day

    def squeezed(draw, read, batch, n_channels, summary, missing, uniforms=None):
        if not summary:
            if uniforms is None:
                uniforms = torch.rand(batch, len(missing), generator=draw.generator, device=missing.device)
            uniforms = uniforms.clone()
            for c in (channels.index(name) for name in SQUEEZED):
                uniforms[:, c] *= top
        return day(draw, read, batch, n_channels, summary, missing, uniforms)

    synthwear.model.Draw.day = squeezed
    try:
        yield
    finally:
        synthwear.model.Draw.day = day


def main() -> None:
    recipe = default_recipe()
    rows: dict[str, list[dict]] = {name: [] for name in TOPS}
    for k, holdout in enumerate(folds(recipe), 1):
        synth = Synthesizer(recipe).fit(holdout_persons=holdout, progress=False)
        training_windows = evaluation_windows(recipe, synth.parts["train"]).values
        for name, top in TOPS.items():
            with days_squeezed(list(recipe.channels), top):
                synth.model.persistence = fit_persistence(recipe, synth.model, training_windows, recipe.seed)
                rows[name].append(scored(recipe, synth))
            print(f"fold {k} {name}: {rows[name][-1]['discriminative']:.3f}", flush=True)
    for name, scores in rows.items():
        print(name, summary(scores, recipe.channels))


if __name__ == "__main__":
    main()
