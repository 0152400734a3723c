"""The privacy unit is the person: a step holds at most one window of any person, persons are
drawn at the recipe's rate, and a drawn person's window is always their own."""

import numpy as np
import torch
from opacus.data_loader import DPDataLoader

from synthwear.privacy.sampling import PersonWindows, ShardedPersonSampler, person_loader, sharded_person_loader
from synthwear.shard import Shard
from synthwear.train import WindowTokens

DAYS, PERSONS = 3, 8


def labelled_windows(rows_per_person: np.ndarray) -> tuple[WindowTokens, np.ndarray]:
    """Token row r is (r, person of r), so a window shows where it starts and whose it is."""
    person_of_row = np.repeat(np.arange(len(rows_per_person)), rows_per_person)
    tokens = np.stack([np.arange(len(person_of_row)), person_of_row], axis=1)
    offsets = np.concatenate([[0], np.cumsum(rows_per_person)])
    starts = np.concatenate([np.arange(offsets[p], offsets[p + 1] - DAYS + 1) for p in range(len(rows_per_person))])
    return WindowTokens(torch.from_numpy(tokens), torch.from_numpy(starts), DAYS), person_of_row[starts]


def test_a_person_yields_only_their_own_windows_and_all_of_them():
    windows, persons = labelled_windows(np.arange(PERSONS) + DAYS + 2)
    dataset = PersonWindows(windows, persons, torch.Generator().manual_seed(0))
    assert len(dataset) == PERSONS
    for person in range(PERSONS):
        drawn = [dataset[person] for _ in range(100)]
        assert all(bool((window[:, 1] == person).all()) for window in drawn)
        assert {int(window[0, 0]) for window in drawn} == set(windows.starts[persons == person].tolist())


def test_poisson_steps_draw_each_person_at_most_once_at_the_recipes_rate():
    windows, persons = labelled_windows(np.full(PERSONS, 20))  # many windows per person
    dataset = PersonWindows(windows, persons, torch.Generator().manual_seed(0))
    loader = DPDataLoader.from_data_loader(person_loader(dataset, 0.25, torch.Generator().manual_seed(1)))
    assert loader.sample_rate == 0.25  # what the accountant is told: a person's chance, however many windows they have
    sizes = []
    for _ in range(100):
        for batch in loader:
            ids = batch[:, 0, 1].tolist()
            assert len(ids) == len(set(ids))
            sizes.append(len(ids))
    assert abs(np.mean(sizes) - 0.25 * PERSONS) < 3 * np.sqrt(PERSONS * 0.25 * 0.75 / len(sizes))


def test_ranks_draw_disjoint_persons_that_together_are_a_poisson_draw_of_all():
    shards = [Shard(rank, 3) for rank in range(3)]
    samplers = [
        ShardedPersonSampler(PERSONS, 0.25, shard, torch.Generator().manual_seed(10 + shard.rank)) for shard in shards
    ]
    assert [len(s) for s in samplers] == [4, 4, 4]  # q = 1 / len: what Opacus tells the accountant
    drawn = np.zeros(PERSONS)
    steps = 0
    for _ in range(400):
        for batches in zip(*samplers, strict=True):  # every rank takes every step
            owners = [set(batch) for batch in batches]
            assert all(a.isdisjoint(b) for i, a in enumerate(owners) for b in owners[i + 1 :])
            for batch in batches:
                drawn[batch] += 1
            steps += 1
    rate = drawn / steps
    assert np.all(np.abs(rate - 0.25) < 4 * np.sqrt(0.25 * 0.75 / steps))  # each person, not just on average


def test_an_empty_draw_is_still_a_step_with_an_empty_batch():
    windows, persons = labelled_windows(np.full(PERSONS, 10))
    dataset = PersonWindows(windows, persons, torch.Generator().manual_seed(0))
    loader = sharded_person_loader(dataset, 0.02, Shard(1, 4), torch.Generator().manual_seed(0))
    batches = [batch for _ in range(20) for batch in loader]
    assert len(batches) == 20 * 50
    assert any(len(batch) == 0 for batch in batches)
    assert all(batch.shape[1:] == (DAYS, 2) for batch in batches)
    assert {int(p) for batch in batches for p in batch[:, 0, 1]} <= {1, 5}  # rank 1 of 4 owns persons 1 and 5
