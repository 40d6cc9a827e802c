"""The per-agent byte counter behind the store budget, on every store: kept by every write that
changes a session's stored bytes, never counting an entry twice, and computed once for older stores."""

from __future__ import annotations

import asyncio
import base64
import sqlite3
from datetime import timedelta

import pytest

from tests.conftest import MakeManager
from worker import SessionManager
from worker.engine.clock import ManualClock
from worker.engine.crypto import EncryptingCodec
from worker.errors import SessionNotFound
from worker.sessions.rotation import rotate
from worker.stores.base import SessionQuery, SessionStore
from worker.stores.mongo import MongoStore
from worker.stores.sqlite import SqliteStore

KEY = base64.b64encode(b"K" * 32).decode()


async def _truth(store: SessionStore, agent_id: str) -> tuple[int, int]:
    """(the sum of the agent's sessions' stored_bytes, the sum of its entries' payloads as stored)."""
    sessions = await store.list_sessions(SessionQuery(agent_id=agent_id, limit=1000))
    payloads = 0
    for session in sessions:
        entries = await store.read_entries(session.id, 1, session.last_seq + 100, 10_000)
        payloads += sum(len(entry.payload) for entry in entries)
    return sum(session.stored_bytes for session in sessions), payloads


async def _assert_counted(store: SessionStore, agent_id: str, expected: int | None = None) -> int:
    counter = await store.agent_stored_bytes(agent_id)
    assert (counter, counter) == await _truth(store, agent_id)
    if expected is not None:
        assert counter == expected
    return counter


async def _chat(manager: SessionManager, user: str, texts: list[str], agent_id: str = "main") -> str:
    session = await manager.get_or_create_session(user_id=user, channel_id="telegram", agent_id=agent_id)
    for index, text in enumerate(texts):
        await manager.add_message(session.id, "user", text, event_id=f"{user}-{index}")
    return session.id


async def test_appends_count_once_however_often_an_event_comes_back(manager: SessionManager) -> None:
    first = await _chat(manager, "u1", ["hello", "x" * 500])
    await _chat(manager, "u2", ["other agent"], agent_id="ops")
    counted = await _assert_counted(manager.store, "main")
    assert counted > 505 and await _assert_counted(manager.store, "ops") > len("other agent")
    # Redelivered: the same event ids, one after the other and all at once.
    await manager.add_message(first, "user", "hello", event_id="u1-0")
    await _assert_counted(manager.store, "main", counted)
    await asyncio.gather(*(manager.add_message(first, "user", "again", event_id="dup") for _ in range(8)))
    assert (await manager.get_session(first)).message_count == 3
    assert counted < await _assert_counted(manager.store, "main") < counted + 100  # one entry more, once


async def test_two_managers_appending_at_once_are_both_counted(make_manager: MakeManager) -> None:
    left, right = make_manager(), make_manager()
    session = await left.get_or_create_session(user_id="u1", channel_id="telegram")
    other = await right.get_or_create_session(user_id="u2", channel_id="telegram")
    writes = [m.add_message(s.id, "user", f"m{n:03d}") for n in range(15) for m, s in ((left, session), (right, other))]
    await asyncio.gather(*writes)
    assert (await left.get_session(session.id)).message_count == 15
    assert await _assert_counted(left.store, "main") > 30 * 4


async def test_deletes_trims_and_cleanup_take_their_bytes_off(manager: SessionManager, clock: ManualClock) -> None:
    doomed = await _chat(manager, "u1", ["a" * 100, "b" * 100])
    kept = await _chat(manager, "u2", ["c" * 10, "d" * 20, "e" * 30])
    both = await _assert_counted(manager.store, "main")
    await manager.store.delete_sessions([doomed])
    alone = await _assert_counted(manager.store, "main")
    await manager.store.delete_sessions([doomed])  # deleted already: nothing more comes off
    assert both - 200 > await _assert_counted(manager.store, "main", alone) > 60
    assert await manager.store.entries_after(kept, 1, delete=True) == 2
    assert alone - 50 > await _assert_counted(manager.store, "main") > 10
    await manager.store.archive_session(kept, "reset", (await manager.get_session(kept)).updated_at)
    clock.advance(timedelta(hours=2))
    report = await manager.cleanup(older_than="1h")
    assert report.sessions == 1
    await _assert_counted(manager.store, "main", 0)


async def test_rotation_counts_the_sealed_size(make_manager: MakeManager) -> None:
    plain = make_manager()
    await _chat(plain, "u1", ["a secret of some length", "and another one"])
    before = await _assert_counted(plain.store, "main")
    sealing = make_manager(encrypt_transcripts=True, encryption_key=KEY)
    codec = sealing.transcript.codec
    assert isinstance(codec, EncryptingCodec)
    report = await rotate(sealing.store, codec)
    assert report.entries == 2
    after = await _assert_counted(sealing.store, "main")
    assert after > before  # sealed payloads are longer, and the counter says by how much


async def _as_an_older_store_left_it(store: SessionStore) -> None:
    """No counters and, on MongoDB, sessions without stored bytes (that version had none)."""
    if isinstance(store, SqliteStore):

        def older(conn: sqlite3.Connection) -> None:
            conn.execute("DROP TABLE agent_bytes")
            conn.execute("UPDATE sessions SET stored_bytes = 0")
            conn.execute("PRAGMA user_version = 1")

        await store._db.write(older, alone=True)
        return
    assert isinstance(store, MongoStore)
    await store._meta.delete_many({"_id": {"$in": ["stored-bytes", "agent-bytes"]}})
    await store._counters.drop()
    await store._sessions.update_many({}, {"$unset": {"stored_bytes": ""}})


async def test_an_older_store_gets_its_counters_at_start_up(manager: SessionManager, store: SessionStore) -> None:
    session_id = await _chat(manager, "u1", ["one", "two" * 50])
    await _chat(manager, "u2", ["three"], agent_id="ops")
    expected = await _truth(store, "main")
    await _as_an_older_store_left_it(store)
    await store.ensure_schema()
    assert await _truth(store, "main") == expected
    await _assert_counted(store, "main", expected[0])
    await _assert_counted(store, "ops")
    assert await store.agent_ids() >= {"main", "ops"}
    # The migration ran once: counting goes on from there.
    await manager.add_message(session_id, "user", "four")
    await store.ensure_schema()
    assert await _assert_counted(store, "main") > expected[0] + 4


async def test_an_append_after_another_process_changed_the_session_is_counted_once(make_manager: MakeManager) -> None:
    left, right = make_manager(), make_manager()  # two workers: each its own session cache
    session_id = await _chat(left, "u1", ["first"])
    await right.set_model(session_id, "gpt-x")  # left's cached copy is one version behind now
    await left.add_message(session_id, "user", "second")
    assert (await right.get_session(session_id)).message_count == 2
    await _assert_counted(left.store, "main")


async def test_an_append_racing_a_deletion_counts_nothing(make_manager: MakeManager) -> None:
    left, right = make_manager(), make_manager()
    session_id = await _chat(left, "u1", ["first"])
    await right.store.delete_sessions([session_id])  # left still holds the session in its cache
    with pytest.raises(SessionNotFound):
        await left.add_message(session_id, "user", "too late")
    await _assert_counted(left.store, "main", 0)
