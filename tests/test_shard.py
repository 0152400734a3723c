"""A process's place among torchrun's processes: its slices of the data, and what the ranks exchange."""

import torch
from gloo import on_gloo_ranks

from synthwear.shard import Shard


def test_shards_of_one_order_are_disjoint_and_equally_long():
    order = torch.randperm(11, generator=torch.Generator().manual_seed(0))
    slices = [Shard(rank, 3).take(order) for rank in range(3)]
    assert [len(s) for s in slices] == [3, 3, 3]
    taken = torch.cat(slices)
    assert len(set(taken.tolist())) == 9
    assert set(taken.tolist()) <= set(order.tolist())


def test_a_single_process_takes_the_whole_order():
    order = torch.randperm(7)
    assert torch.equal(Shard().take(order), order)


def test_scoring_parts_cover_every_row_once():
    parts = [Shard(rank, 2).part(9, torch.device("cpu")) for rank in range(2)]
    assert torch.equal(torch.cat(parts), torch.arange(9))


def gathered_on_rank(rank: int) -> dict:
    return {"gathered": Shard.of_process_group().gather({"rank": rank, "state": torch.full((2,), rank)})}


def test_every_rank_gathers_every_ranks_object_in_rank_order(tmp_path):
    ranks = on_gloo_ranks(gathered_on_rank, tmp_path)
    for rank in ranks:
        assert [g["rank"] for g in rank["gathered"]] == [0, 1]
        assert [g["state"].tolist() for g in rank["gathered"]] == [[0, 0], [1, 1]]


def test_a_single_process_gathers_its_own():
    assert Shard().gather("mine") == ["mine"]
