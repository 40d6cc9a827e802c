"""Which live worker owns which shard: rendezvous hashing, so a membership change moves few shards."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def _score(worker_id: str, shard: int) -> bytes:
    return hashlib.blake2b(f"{worker_id}/{shard}".encode(), digest_size=8).digest()


def owner(shard: int, workers: Iterable[str]) -> str | None:
    return max(workers, key=lambda worker: _score(worker, shard), default=None)


def owned_shards(worker_id: str, workers: Iterable[str], shards: int) -> frozenset[int]:
    live = sorted(set(workers) | {worker_id})
    return frozenset(shard for shard in range(shards) if owner(shard, live) == worker_id)
