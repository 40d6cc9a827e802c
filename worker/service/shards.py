"""Which live worker owns which shard.

Rendezvous hashing with a load bound: each shard goes to the worker that scores highest for it
among those with room left, where every worker holds floor(shards / workers) shards and the
remainder go one each to the first workers that reach the floor. Every worker computes the same answer from the
same membership, a membership change moves few shards, and no worker is left without work.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def _score(worker_id: str, shard: int) -> bytes:
    return hashlib.blake2b(f"{worker_id}/{shard}".encode(), digest_size=8).digest()


def assignment(workers: Iterable[str], shards: int) -> dict[int, str]:
    live = sorted(set(workers))
    if not live:
        return {}
    base, extra = divmod(shards, len(live))
    load = dict.fromkeys(live, 0)
    owners: dict[int, str] = {}
    for shard in range(shards):
        for worker in sorted(live, key=lambda w: _score(w, shard), reverse=True):
            # Total room equals the shard count, so every shard finds a worker with room.
            if load[worker] < base or (load[worker] == base and extra > 0):
                if load[worker] == base:
                    extra -= 1
                owners[shard] = worker
                load[worker] += 1
                break
    return owners


def owned_shards(worker_id: str, workers: Iterable[str], shards: int) -> frozenset[int]:
    owners = assignment(set(workers) | {worker_id}, shards)
    return frozenset(shard for shard, owner in owners.items() if owner == worker_id)
