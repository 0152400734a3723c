"""Run a test's work in several gloo processes, as torchrun would, and collect what each returned."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def run_rank(rank: int, world_size: int, folder: str, work: Callable[[int], dict]) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{folder}/store", rank=rank, world_size=world_size)
    try:
        torch.save(work(rank), f"{folder}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def on_gloo_ranks(work: Callable[[int], dict], folder: Path, world_size: int = 2) -> list[dict]:
    """``work(rank)`` in ``world_size`` processes of one gloo group (``work`` must be a module-level
    function); what each rank returned, in rank order."""
    mp.spawn(run_rank, args=(world_size, str(folder), work), nprocs=world_size, join=True)
    return [torch.load(Path(folder) / f"rank{rank}.pt") for rank in range(world_size)]


def assert_same_weights(ranks: list[dict]) -> None:
    for name, value in ranks[0]["state"].items():
        for other in ranks[1:]:
            assert torch.equal(value, other["state"][name]), name
