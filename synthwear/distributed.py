"""``torchrun --nproc_per_node=N -m synthwear.distributed RECIPE``: one recipe, N training processes.

torchrun starts N copies of this module with RANK, WORLD_SIZE and LOCAL_RANK set. Each joins the
process group (gloo on CPU, nccl on GPU, one GPU per process) and runs the recipe; ``train_model``
finds the group and trains with DistributedDataParallel on its shard of the windows (a recipe with
``privacy`` trains with Opacus' distributed DP-SGD on its share of the persons). Every rank
ends training with the same weights; rank 0 then samples, evaluates and writes the run folder,
and the other ranks are done. A killed run continues with ``--resume`` (synthwear.checkpoint).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.distributed as dist

from synthwear.errors import SynthwearError
from synthwear.shard import Shard


@contextmanager
def process_group() -> Iterator[Shard]:
    """Join the group torchrun describes in the environment; leave it on exit."""
    if "RANK" not in os.environ:
        raise SynthwearError(
            "synthwear.distributed must be started by torchrun, "
            "e.g. torchrun --nproc_per_node=2 -m synthwear.distributed recipes/fitbit.yaml"
        )
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))  # "cuda" in the recipe then means this rank's GPU
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    try:
        yield Shard.of_process_group()
    finally:
        dist.destroy_process_group()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="torchrun --nproc_per_node=N -m synthwear.distributed",
        description="Run a recipe with its training spread over torchrun's processes.",
    )
    parser.add_argument("recipe", type=Path, help="recipe YAML file")
    parser.add_argument("--out", type=Path, help="run folder (default: runs/<recipe name>)")
    parser.add_argument("--seed", type=int, help="override the recipe's seed")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier run in the run folder")
    parser.add_argument(
        "--resume", action="store_true", help="continue a killed run from its checkpoint (same number of processes)"
    )
    args = parser.parse_args(argv)

    from synthwear.cli import interrupted, make_progress, print_summary, terminated
    from synthwear.pipeline import run_recipe
    from synthwear.recipe import load_recipe

    signal.signal(signal.SIGTERM, terminated)  # unwinds as Ctrl-C does: no staging or lock left
    out_dir = args.out
    try:
        recipe = load_recipe(args.recipe)
        if args.seed is not None:
            recipe.seed = args.seed
        out_dir = out_dir or Path("runs") / recipe.name  # run_recipe checks it on every rank before training
        options = {"overwrite": args.overwrite, "resume": args.resume}
        with process_group() as shard:
            if shard.rank == 0:
                with make_progress() as progress:
                    result = run_recipe(recipe, out_dir, progress=progress, **options)
                print_summary(result.folder, result.run, result.metrics)
                if result.failures:
                    sys.exit(f"Error: {result.failures}")
            else:
                run_recipe(recipe, out_dir, **options)  # trains its shard, then returns before sampling and writing
    except SynthwearError as err:
        sys.exit(f"Error: {err}")
    except KeyboardInterrupt:  # torchrun passes Ctrl-C on to every rank; rank 0 says what is kept
        sys.exit(interrupted(out_dir).exit_code if os.environ.get("RANK") == "0" and out_dir else 130)


if __name__ == "__main__":
    main()
