"""An unwell store (full, read-only, corrupt, without a primary) holds events, never dead-letters
them, and says so once; a bad event is still told apart from a bad store."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import pytest
from pymongo.errors import DuplicateKeyError, NotPrimaryError, OperationFailure

from schemas.events import ChatSource, InboundMessage
from tests.support.fakes import Delivery, RecordingPublisher, delivery_of, handler_for
from worker import create_session_manager
from worker.engine.clock import system_clock
from worker.engine.tokens import CharRatioCounter
from worker.errors import StoreUnavailable
from worker.service.processor import ordering_key
from worker.sessions.manager import SessionManager
from worker.stores import mongo_base, sqlite_db
from worker.stores.health import StoreHealth, watch
from worker.stores.sqlite import SqliteStore


def _delivery(slot: int, n: int) -> Delivery:
    source = ChatSource(channel="telegram", peer_id=str(slot), user_id=str(slot))
    event = InboundMessage(event_id=f"m-{slot}-{n}", source=source, text=f"{slot}:{n}")
    return delivery_of(event.model_dump(mode="json", by_alias=True), ordering_key("main", source))


async def _history(manager: SessionManager, slot: int) -> list[str | None]:
    session = await manager.get_or_create_session(user_id=str(slot), channel_id="telegram", peer_id=str(slot))
    return [entry.content for entry in await manager.get_history(session.id)]


async def _writer_pragma(store: SqliteStore, pragma: str) -> None:
    """Set a PRAGMA on the store's own writer connection (the one the worker writes through)."""
    await store._db.write(lambda conn: conn.execute(f"PRAGMA {pragma}").fetchall(), alone=True)


async def test_a_read_only_store_holds_every_event_logs_once_and_resumes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The writer connection turned read-only (SQLITE_READONLY, as a file made read-only under a
    running worker gives): every event is held in order, none is dead-lettered or acked, one line
    says so; the probe finds the store writable again and the held events go through."""
    store = SqliteStore.at_path(str(tmp_path / "s.db"))
    manager = create_session_manager(store=store, token_counter=CharRatioCounter())
    await manager.open()
    health, stop = StoreHealth(), asyncio.Event()
    publisher = RecordingPublisher()
    handler = handler_for(manager, publisher, health=health)
    watching = asyncio.create_task(watch(health, _probe(store), stop, _nothing, interval=0.1))
    await _writer_pragma(store, "query_only = 1")
    caplog.set_level(logging.INFO, logger="worker.stores.health")
    held = [_delivery(slot, n) for slot in range(20) for n in (1, 2)]
    lanes = [asyncio.create_task(_lane(handler, held[i : i + 2])) for i in range(0, len(held), 2)]
    await asyncio.sleep(1.5)
    assert not health.well and not publisher.dead
    assert all(d.acks == 0 for d in held)
    await _writer_pragma(store, "query_only = 0")
    await asyncio.wait_for(asyncio.gather(*lanes), 15)
    await health.wait_recovered(within=6)  # the probe's next look (held events may go first)
    assert health.well and not publisher.dead and all(d.acks == 1 for d in held)
    for slot in range(20):
        assert await _history(manager, slot) == [f"{slot}:1", f"{slot}:2"]
    messages = [r.getMessage() for r in caplog.records if r.name == "worker.stores.health"]
    assert len([m for m in messages if m.startswith("store unavailable")]) == 1, messages
    assert len([m for m in messages if m.startswith("store works again")]) == 1, messages
    stop.set()
    await watching
    await manager.close()


def _probe(store: SqliteStore) -> Callable[[], Awaitable[None]]:
    async def probe() -> None:
        await store.check_writable(system_clock())

    return probe


async def _nothing() -> None:
    return None


async def _lane(handler: Any, deliveries: list[Delivery]) -> None:
    for delivery in deliveries:  # one chat's events, one after another, as a lane runs them
        await handler.handle(cast(Any, delivery))


async def test_a_corrupt_file_is_an_unwell_store_not_a_bad_event(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    manager = create_session_manager(db_path=str(path), token_counter=CharRatioCounter())
    await manager.open()
    with sqlite3.connect(path) as conn:  # the schema's pages: those of the empty store
        schema_pages = conn.execute("PRAGMA page_count").fetchone()[0]
    for n in range(200):
        await manager.get_or_create_session(user_id=str(n), channel_id="telegram", peer_id=str(n))
    await manager.close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    with path.open("r+b") as raw:  # garble every page the rows went to (the header and schema stay valid)
        raw.seek(page_size * schema_pages)
        raw.write(b"\xa5" * (path.stat().st_size - page_size * schema_pages))
    store = SqliteStore.at_path(str(path))
    await store.ensure_schema()
    with pytest.raises(StoreUnavailable, match=r"malformed|not a database"):
        await store.count_sessions(None, None)
    await store.close()


def test_sqlite_errors_are_told_apart() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY)")
    conn.execute("INSERT INTO t VALUES ('a')")
    with pytest.raises(sqlite3.IntegrityError) as duplicate:
        conn.execute("INSERT INTO t VALUES ('a')")
    assert not sqlite_db.store_is_unwell(duplicate.value)  # about the write: a bug or a duplicate
    conn.execute("PRAGMA query_only = 1")
    with pytest.raises(sqlite3.OperationalError) as readonly:
        conn.execute("INSERT INTO t VALUES ('b')")
    assert sqlite_db.store_is_unwell(readonly.value)
    assert sqlite_db.store_is_unwell(PermissionError(13, "Permission denied"))  # the writers' lock file


def test_mongodb_errors_are_told_apart() -> None:
    assert mongo_base.store_is_unwell(NotPrimaryError("not primary"))
    assert mongo_base.store_is_unwell(OperationFailure("not writable primary", code=10107))
    assert mongo_base.store_is_unwell(OperationFailure("out of disk space", code=14031))
    assert not mongo_base.store_is_unwell(DuplicateKeyError("E11000 duplicate key", code=11000))
    assert not mongo_base.store_is_unwell(OperationFailure("bad document", code=2))
