"""The benchmark's pre-filled stores hold the rows the store's own codec would write."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from benchmarks import population
from benchmarks.cases import KEY
from benchmarks.population import _session, _session_rows, populate, prefill
from worker.engine.crypto import EncryptingCodec, KeyRing
from worker.stores.sqlite import SqliteStore
from worker.stores.sqlite_rows import session_params


@pytest.mark.parametrize(("prefix", "entries"), [("idle", 0), ("", 25)])
def test_copied_session_rows_equal_rows_made_one_by_one(prefix: str, entries: int) -> None:
    now = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
    rows = list(_session_rows(300, entries, now, prefix))
    assert rows == [session_params(_session(n, entries, now, prefix)) for n in range(300)]


async def test_a_populated_store_reads_back_through_the_store(tmp_path: Path) -> None:
    path = str(tmp_path / "bench.db")
    populate(
        path,
        idle_sessions=1_000,
        long_slots=3,
        entries_per_slot=40,
        codec=EncryptingCodec(KeyRing.parse(f"bench:{KEY}")),
    )
    store = SqliteStore.at_path(path)
    await store.ensure_schema()
    try:
        assert await store.count_sessions(None, "active") == 1_003
        idle = await store.get_session("s_idle0000999")
        assert idle is not None and idle.key == "agent:main:stored:peer:999"
        assert idle.delivery_context is not None and idle.delivery_context.to == "u999"
        long = await store.get_session("s_0000002")
        assert long is not None and long.last_seq == 40
        assert len(await store.read_entries(long.id, 1, 40, 100)) == 40
    finally:
        await store.close()


def test_prefilled_stores_are_copies_of_one_template_made_once(tmp_path: Path) -> None:
    codec = EncryptingCodec(KeyRing.parse(f"bench:{KEY}"))
    made: list[str] = []

    def counting(path: str, **kinds: Any) -> None:
        made.append(path)
        populate(path, **kinds)

    first, second = tmp_path / "round-1.db", tmp_path / "round-2.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(population, "populate", counting)
        for path in (first, second):
            prefill(str(path), tmp_path, idle_sessions=20, long_slots=2, entries_per_slot=5, codec=codec)
    assert len(made) == 1, "the template is written once"
    assert first.read_bytes() == second.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["round-1.db", "round-2.db", "template-20-2-5.db"]
    with sqlite3.connect(second) as conn:
        assert conn.execute("SELECT COUNT(*) FROM entries").fetchone() == (10,)


async def test_a_populated_store_is_current_so_opening_it_rewrites_nothing(tmp_path: Path) -> None:
    """A worker opening a pre-filled copy finds nothing to upgrade: the growth cases measure the
    drain, not a migration of a million rows at the worker's start."""
    path = tmp_path / "bench.db"
    codec = EncryptingCodec(KeyRing.parse(f"bench:{KEY}"))
    populate(str(path), idle_sessions=10, long_slots=2, entries_per_slot=30, codec=codec)
    with sqlite3.connect(path) as conn:
        stored = dict(conn.execute("SELECT id, stored_bytes FROM sessions WHERE id LIKE 's_000%'").fetchall())
        counted = dict(conn.execute("SELECT session_id, sum(length(payload)) FROM entries GROUP BY session_id"))
    assert stored == counted and all(stored.values())
    before = path.read_bytes()
    store = SqliteStore.at_path(str(path))
    await store.ensure_schema()
    await store.close()
    assert path.read_bytes() == before, "opening the store changed the file: an upgrade step ran"
