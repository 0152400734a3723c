"""Weights averaged over training steps (an exponential moving average, EMA): validation loss, early
stopping and the released weights are the average's, the optimizer steps the live weights.

Hooked into ``synthwear.train.run_round`` from outside (not built): after each optimizer step the
average moves towards the live weights with decay min(DECAY, (1 + t) / (10 + t)) at step t (the
warm-up keeps the first epochs from being mostly the initial weights); after each round the model
holds the average, so that ``run_training`` validates and keeps it, and the next round goes on from
the live weights. Per fold, the default recipe with one candidate, seeds 0 and 1.

    python benchmarks/experiments/ema.py 0.999
"""

from __future__ import annotations

import argparse
import copy

import torch
from common import default_recipe, folds, scored, summary

import synthwear.train as train
from synthwear import Synthesizer

plain_round = train.run_round


class Averaged:
    """The live and averaged weights of one training (its optimizer's id), swapped around each round."""

    def __init__(self, generator: torch.nn.Module, optimizer: torch.optim.Optimizer, decay: float):
        self.average = {k: v.detach().clone() for k, v in generator.state_dict().items()}
        self.live, self.steps, self.decay = None, 0, decay
        self.parameters = dict(generator.named_parameters())
        optimizer.register_step_post_hook(self.update)

    def update(self, optimizer, args, kwargs) -> None:
        self.steps += 1
        decay = min(self.decay, (1 + self.steps) / (10 + self.steps))
        with torch.no_grad():
            for name, parameter in self.parameters.items():
                self.average[name].mul_(decay).add_(parameter.detach(), alpha=1 - decay)


def averaging(decay: float):
    trainings: dict[int, Averaged] = {}  # per optimizer: one training's weights

    def run_round(model, plan, batches, state, config, hide_summary):
        if id(plan.optimizer) not in trainings:
            trainings[id(plan.optimizer)] = Averaged(model.generator, plan.optimizer, decay)
        averaged = trainings[id(plan.optimizer)]
        if averaged.live is not None:
            model.generator.load_state_dict(averaged.live)
        loss = plain_round(model, plan, batches, state, config, hide_summary)
        averaged.live = copy.deepcopy(model.generator.state_dict())
        model.generator.load_state_dict(averaged.average)
        return loss

    return run_round


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("decay", type=float)
    decay = parser.parse_args().decay
    recipe = default_recipe()
    rows = []
    for k, holdout in enumerate(folds(recipe), 1):
        for seed in (0, 1):
            train.run_round = averaging(decay)
            seeded = recipe.model_copy(update={"seed": seed})
            synth = Synthesizer(seeded).fit(holdout_persons=holdout, progress=False)
            rows.append(scored(seeded, synth))
            best, epochs = synth.record["training"]["best_epoch"], synth.record["training"]["epochs"]
            print(
                f"fold {k} seed {seed}: discriminative {rows[-1]['discriminative']:.3f}, best epoch {best} of {epochs}"
            )
    print(summary(rows, recipe.channels))


if __name__ == "__main__":
    main()
