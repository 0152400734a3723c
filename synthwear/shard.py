"""A process's place among torchrun's training processes, and what the processes exchange.

Outside torchrun a process is rank 0 of 1 and every exchange returns its own values, so the training
loop, the checkpoints and the DP sampler are written once for both cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Shard:
    """This process's place among the training processes: rank 0 of 1 unless run under torchrun."""

    rank: int = 0
    world_size: int = 1

    @classmethod
    def of_process_group(cls) -> Shard:
        """The rank and size of the initialised ``torch.distributed`` group, if there is one."""
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()

    def take(self, order: torch.Tensor) -> torch.Tensor:
        """This rank's disjoint slice of an order every rank drew identically; all slices have the
        same length (the last ``len % world_size`` are dropped) so that the ranks step together."""
        per_rank = len(order) // self.world_size
        return order[self.rank * per_rank : (self.rank + 1) * per_rank]

    def part(self, n: int, device: torch.device) -> torch.Tensor:
        """This rank's contiguous share of rows 0..n-1 for scoring: nothing dropped, sizes differ by at most one."""
        return torch.arange(n, device=device).tensor_split(self.world_size)[self.rank]

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """Element-wise sum over all ranks (the values themselves in a single process)."""
        if self.world_size > 1:
            values = values.clone()
            dist.all_reduce(values)
        return values

    def mean(self, value: float, device: torch.device) -> float:
        """The mean over all ranks of one number each holds; ``device`` is where the backend reduces
        (the rank's GPU under nccl)."""
        return float(self.sum(torch.tensor([value], dtype=torch.float64, device=device))[0]) / self.world_size

    def gather(self, own: Any) -> list[Any]:
        """Every rank's ``own`` (any picklable object), in rank order: a collective every rank must call."""
        if self.world_size == 1:
            return [own]
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, own)
        return gathered
