"""The commit window: a group waits for company only after a group of several, so a lone writer
never waits, concurrent writers at a moderate pace share groups, and nothing waiting is lost at
close. The same for SQLite's group commits and MongoDB's append batches."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from schemas import SessionEntry
from tests.support.rows_db import insert_row, open_rows_db
from worker import create_session_manager
from worker.engine.tokens import CharRatioCounter
from worker.sessions.manager import SessionManager
from worker.sessions.options import options_from_settings
from worker.stores import sqlite_db
from worker.stores.commit_window import CommitWindow
from worker.stores.mongo import MongoStore

WINDOW_MS = 200.0  # far longer than a commit here: whoever waits it shows


def test_the_window_follows_a_group_of_several_only() -> None:
    window = CommitWindow(0.002)
    assert window.delay() == 0.0  # nothing committed yet
    window.committed(3)
    assert window.delay() == 0.002
    window.committed(1)
    assert window.delay() == 0.0
    assert CommitWindow(-1).seconds == 0.0


@pytest.fixture
def group_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    sizes: list[int] = []
    original = sqlite_db._run_group

    def recorded(conn: Any, lock: Any, group: Any) -> Any:
        sizes.append(len(group))
        return original(conn, lock, group)

    monkeypatch.setattr(sqlite_db, "_run_group", recorded)
    return sizes


async def test_a_lone_writer_never_waits_the_window(tmp_path: Path, group_sizes: list[int]) -> None:
    db = await open_rows_db(tmp_path / "w.db", commit_window_ms=WINDOW_MS)
    began = time.perf_counter()
    for n in range(5):
        assert await db.write(insert_row(f"r{n}")) == f"r{n}"
    assert time.perf_counter() - began < WINDOW_MS / 1000  # five windows would be a second
    assert group_sizes == [1] * 5
    await db.close()


async def test_after_a_shared_group_the_next_one_waits_for_company(tmp_path: Path, group_sizes: list[int]) -> None:
    db = await open_rows_db(tmp_path / "w.db", commit_window_ms=WINDOW_MS)
    # Three at once: the first goes alone, the two that queued behind it share the next group.
    await asyncio.gather(*(db.write(insert_row(f"a{n}")) for n in range(3)))
    assert group_sizes == [1, 2]
    # So the next write waits the window, and one that comes meanwhile joins its group.
    first = asyncio.ensure_future(db.write(insert_row("b0")))
    await asyncio.sleep(0.02)
    assert not first.done(), "it waits for company"
    assert await db.write(insert_row("b1")) == "b1"
    assert await first == "b0"
    assert group_sizes == [1, 2, 2]
    # A write alone in its window makes a group of one: the one after it goes at once.
    await db.write(insert_row("c0"))
    began = time.perf_counter()
    await db.write(insert_row("c1"))
    assert time.perf_counter() - began < WINDOW_MS / 1000
    assert group_sizes == [1, 2, 2, 1, 1]
    names = await db.read(lambda conn: [row[0] for row in conn.execute("SELECT name FROM rows ORDER BY name")])
    assert names == ["a0", "a1", "a2", "b0", "b1", "c0", "c1"]
    await db.close()


async def test_a_group_in_its_window_is_committed_before_the_close(tmp_path: Path, group_sizes: list[int]) -> None:
    db = await open_rows_db(tmp_path / "w.db", commit_window_ms=10_000)
    await asyncio.gather(*(db.write(insert_row(f"a{n}")) for n in range(3)))
    waiting = asyncio.ensure_future(db.write(insert_row("last")))
    await asyncio.sleep(0.01)
    began = time.perf_counter()
    await db.close()
    assert time.perf_counter() - began < 5  # not the ten-second window
    assert await waiting == "last"
    reopened = await open_rows_db(tmp_path / "w.db")
    assert await reopened.read(lambda conn: conn.execute("SELECT COUNT(*) FROM rows").fetchone()[0]) == 4
    await reopened.close()


async def _mongo_chats(url: str, database: str, count: int) -> tuple[MongoStore, SessionManager, list[SessionEntry]]:
    """A MongoDB store with the window, its manager, and `count` sessions."""
    store = MongoStore.from_url(url, database, commit_window_ms=WINDOW_MS)
    manager = create_session_manager(store=store, token_counter=CharRatioCounter())
    await manager.open()
    sessions = [
        await manager.get_or_create_session(user_id=f"u{i}", channel_id="slack", peer_id=f"u{i}") for i in range(count)
    ]
    return store, manager, sessions


@pytest.mark.realmongo
async def test_mongodb_batches_wait_for_company_too_and_close_writes_the_waiting_one(
    mongodb_url: str, mongodb_database: str
) -> None:
    store, manager, sessions = await _mongo_chats(mongodb_url, mongodb_database, 4)
    began = time.perf_counter()
    await manager.add_message(sessions[0].id, "user", "alone", event_id="e-alone")
    assert time.perf_counter() - began < WINDOW_MS / 1000  # no group before it: no window
    batches: list[int] = []
    original = store._entries.insert_many

    async def counted(documents: list[Any], **kwargs: Any) -> Any:
        batches.append(len(documents))
        return await original(documents, **kwargs)

    store._entries.insert_many = counted  # type: ignore[method-assign, assignment]
    # Three at once go together (the batch starts in a task of its own, once all three are in);
    # then the next waits the window, and one that comes meanwhile joins it.
    await asyncio.gather(
        *(manager.add_message(s.id, "user", "hi", event_id=f"a{i}") for i, s in enumerate(sessions[1:]))
    )
    assert batches == [3]
    first = asyncio.ensure_future(manager.add_message(sessions[0].id, "user", "b0", event_id="b0"))
    await asyncio.sleep(0.02)
    assert not first.done()
    await manager.add_message(sessions[1].id, "user", "b1", event_id="b1")
    await first
    assert batches == [3, 2]
    # The next waits again (the last batch had two); closing writes it before the client closes.
    order: list[str] = []
    client_close = store._client.close

    async def close_client() -> None:
        order.append(f"client closed after {len(batches)} batches")
        await client_close()

    store._client.close = close_client  # type: ignore[method-assign]
    waiting = asyncio.ensure_future(manager.add_message(sessions[2].id, "user", "last", event_id="last"))
    await asyncio.sleep(0.01)
    await store.close()
    assert (await waiting).content == "last"
    assert batches == [3, 2, 1]
    assert order == ["client closed after 3 batches"]


async def test_a_group_that_cannot_reach_the_writer_leaves_the_store_usable(
    tmp_path: Path, group_sizes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = await open_rows_db(tmp_path / "w.db", commit_window_ms=20)
    await asyncio.gather(*(db.write(insert_row(f"a{n}")) for n in range(3)))  # arms the window
    pool = db._writer_pool
    assert pool is not None

    def shutting_down(*_: Any) -> Any:
        raise RuntimeError("cannot schedule new futures after shutdown")

    monkeypatch.setattr(pool, "submit", shutting_down)
    with pytest.raises(RuntimeError, match="after shutdown"):
        await db.write(insert_row("lost"))  # waits its window, then cannot be handed over
    monkeypatch.undo()
    assert await asyncio.wait_for(db.write(insert_row("next")), 5) == "next"  # not stuck flushing
    await db.close()


def test_the_setting_reaches_both_stores() -> None:
    from worker.config import Settings
    from worker.sessions.factory import build_store
    from worker.sessions.options import ManagerOptions
    from worker.stores.sqlite import SqliteStore

    settings = Settings(commit_window_ms=7.5, db_path="unused.db")
    sqlite_store = build_store(ManagerOptions(**options_from_settings(settings)))
    assert isinstance(sqlite_store, SqliteStore)
    assert sqlite_store._db._window.seconds == 0.0075
    options = ManagerOptions(storage="mongodb", mongodb_url="mongodb://127.0.0.1:1", commit_window_ms=3)
    mongo_store = build_store(options)  # no I/O: the client connects lazily
    assert isinstance(mongo_store, MongoStore)
    assert mongo_store._appends._window.seconds == 0.003


@pytest.mark.realmongo
async def test_a_mongodb_append_given_up_in_its_window_does_not_fail_the_rest_of_its_batch(
    mongodb_url: str, mongodb_database: str
) -> None:
    _, manager, sessions = await _mongo_chats(mongodb_url, mongodb_database, 3)
    await asyncio.gather(*(manager.add_message(s.id, "user", "hi", event_id=f"a{i}") for i, s in enumerate(sessions)))
    given_up = asyncio.ensure_future(manager.add_message(sessions[0].id, "user", "gone", event_id="gone"))
    await asyncio.sleep(0.02)  # in the window now
    given_up.cancel()
    kept = await manager.add_message(sessions[1].id, "user", "kept", event_id="kept")
    assert kept.content == "kept"
    assert [entry.content for entry in await manager.get_history(sessions[1].id)] == ["hi", "kept"]
    await manager.close()
