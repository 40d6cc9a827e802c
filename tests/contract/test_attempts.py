"""Durable attempts (poison detection) and the write probe, on every store."""

from __future__ import annotations

from datetime import UTC, datetime

from worker.stores.base import SessionStore

AT = datetime(2026, 3, 3, tzinfo=UTC)


async def test_attempts_count_up_per_key_and_are_forgotten(store: SessionStore) -> None:
    assert [await store.record_attempt("shard.1|e1", AT) for _ in range(3)] == [1, 2, 3]
    assert await store.record_attempt("shard.2|e1", AT) == 1  # another routing key: another event
    await store.forget_attempts("shard.1|e1")
    assert await store.record_attempt("shard.1|e1", AT) == 1
    await store.forget_attempts("never-recorded")  # forgetting nothing is fine


async def test_the_write_probe_writes(store: SessionStore) -> None:
    await store.check_writable(AT)
    await store.check_writable(AT)
