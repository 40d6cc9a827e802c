from __future__ import annotations

from worker.service.shards import assignment, owned_shards


def test_every_shard_has_one_owner_and_load_is_bounded() -> None:
    for workers in (["a"], ["a", "b"], ["a", "b", "c"], [f"w{n}" for n in range(7)]):
        for shards in (1, 4, 16, 33):
            owners = assignment(workers, shards)
            assert sorted(owners) == list(range(shards))
            loads = [list(owners.values()).count(w) for w in workers]
            assert max(loads) <= -(-shards // len(workers))
            if shards >= len(workers):
                assert min(loads) >= 1


def test_views_agree_and_changes_move_few_shards() -> None:
    workers = ["a", "b", "c"]
    mine = [owned_shards(w, workers, 16) for w in workers]
    assert sum(len(m) for m in mine) == 16 and not (mine[0] & mine[1])
    before = assignment(workers, 64)
    after = assignment([*workers, "d"], 64)
    moved = sum(1 for shard in before if before[shard] != after[shard])
    assert moved <= 64 // 4 + 8
