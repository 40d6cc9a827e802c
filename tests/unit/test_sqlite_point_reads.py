"""A chat's hot path reads SQLite on the event loop only: a hand-off to the reader thread costs
more than the read (a new chat's message cost a quarter more CPU with one), so every lookup by
key that opening or resuming a chat makes is a point read."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from worker import create_session_manager
from worker.engine.clock import ManualClock
from worker.stores.sqlite import SqliteStore
from worker.stores.sqlite_db import Connection, SqliteDatabase

T = TypeVar("T")


class ReadLog(SqliteDatabase):
    """The database, noting each read's kind: a point read (on the event loop) or not."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.reads: list[tuple[str, bool]] = []

    async def read(self, fn: Callable[[Connection], T], *, point: bool = False) -> T:
        self.reads.append((fn.__qualname__, point))
        return await super().read(fn, point=point)


def _threaded(db: ReadLog) -> list[str]:
    return [name for name, point in db.reads if not point]


async def test_a_new_chat_and_its_next_generation_read_on_the_event_loop(tmp_path: Path) -> None:
    db = ReadLog(str(tmp_path / "reads.db"))
    clock = ManualClock(datetime(2026, 3, 4, 9, 0, tzinfo=UTC))
    manager = create_session_manager(store=SqliteStore(db), clock=clock, idle_reset_minutes=30)
    async with manager:
        db.reads.clear()
        first = await manager.get_or_create_session(user_id="u1", channel_id="telegram", peer_id="u1")
        await manager.add_message(first.id, "user", "hello")
        assert db.reads, "the new chat was looked up in the store"
        assert _threaded(db) == []

        clock.advance(timedelta(hours=1))  # idle past its reset: the slot's next generation
        db.reads.clear()
        second = await manager.get_or_create_session(user_id="u1", channel_id="telegram", peer_id="u1")
        assert second.id != first.id and second.generation == first.generation + 1
        assert _threaded(db) == []
