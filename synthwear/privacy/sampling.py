"""Persons, not windows, are what DP-SGD samples: the privacy unit is the person.

A person contributes many overlapping windows, so a per-window guarantee would say nothing about a
person. Here the dataset's items are persons: Opacus' Poisson sampler draws each training person
with probability q at every step, and a drawn person contributes exactly one of their windows,
chosen uniformly at random. Adding or removing a person therefore changes at most one row of any
batch, which is the neighbouring relation the accountant assumes.

Under torchrun the persons are dealt out among the ranks and each rank draws its own persons with
the same q (``ShardedPersonSampler``); together the ranks' batches are one Poisson draw of all
persons, which Opacus' distributed optimizer sums before adding the noise once.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from synthwear.shard import Shard
from synthwear.train import WindowTokens


class PersonWindows(Dataset):
    """Item p = one randomly chosen window (T, C) of training person p."""

    def __init__(self, windows: WindowTokens, persons: np.ndarray, generator: torch.Generator):
        if len(persons) != len(windows):
            raise ValueError(f"{len(persons)} person labels for {len(windows)} windows")
        _, person_index = np.unique(persons, return_inverse=True)
        order = np.argsort(person_index, kind="stable")
        counts = np.bincount(person_index)
        self.windows = windows
        self.window_rows = torch.from_numpy(order)  # window indices grouped by person
        self.first = torch.from_numpy(np.concatenate([[0], np.cumsum(counts)[:-1]]))
        self.counts = torch.from_numpy(counts)
        self.generator = generator

    def __len__(self) -> int:
        return len(self.counts)

    def __getitem__(self, person: int) -> torch.Tensor:
        pick = int(torch.randint(int(self.counts[person]), (), generator=self.generator))
        row = self.window_rows[self.first[person] + pick]
        return self.windows.batch(row.view(1))[0]


def person_loader(dataset: PersonWindows, sample_rate: float, generator: torch.Generator) -> DataLoader:
    """A loader of 1/q batches: Opacus reads the sampling rate as 1 / len(loader) when it swaps in
    its Poisson sampler, so this is how q is handed over exactly."""
    batches = round(1 / sample_rate)
    return DataLoader(
        dataset,
        batch_sampler=[list(chunk) for chunk in np.array_split(np.arange(len(dataset)), batches)],
        generator=generator,
    )


class ShardedPersonSampler(Sampler[list[int]]):
    """Poisson sampling of persons split among torchrun's ranks: person p belongs to rank
    p % world_size, and at every step each rank draws each of its persons with probability q.

    Every step yields a batch on every rank, an empty one included. Opacus' own distributed sampler
    skips a rank's empty draw, which leaves that rank a step behind the others: with few persons
    per rank or a small q the ranks' gradient all-reduces then pair up wrongly or hang.
    """

    def __init__(self, persons: int, sample_rate: float, shard: Shard, generator: torch.Generator):
        self.mine = torch.arange(shard.rank, persons, shard.world_size)
        self.sample_rate, self.generator = sample_rate, generator

    def __len__(self) -> int:
        return round(1 / self.sample_rate)  # Opacus reads q back as 1 / len(loader)

    def __iter__(self):
        for _ in range(len(self)):
            yield self.mine[torch.rand(len(self.mine), generator=self.generator) < self.sample_rate].tolist()


def sharded_person_loader(
    dataset: PersonWindows, sample_rate: float, shard: Shard, generator: torch.Generator
) -> DataLoader:
    """This rank's loader of person batches; an empty draw becomes a (0, T, C) batch."""
    tokens = dataset.windows.tokens
    empty = torch.empty((0, dataset.windows.days, tokens.shape[1]), dtype=tokens.dtype, device=tokens.device)
    return DataLoader(
        dataset,
        batch_sampler=ShardedPersonSampler(len(dataset), sample_rate, shard, generator),
        collate_fn=lambda windows: torch.stack(windows) if windows else empty,
    )
