"""How much work a store does, counted rather than timed: SQLite's virtual-machine instructions
(every row a statement examines costs some), MongoDB's commands and the documents they return.

`metered_store` opens a store of a kind with its meter attached; `meter.reset()` starts a count.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.monitoring import CommandFailedEvent, CommandListener, CommandStartedEvent, CommandSucceededEvent

from tests.support.backends import opened_worker_store
from worker.config import Storage
from worker.stores.base import SessionStore
from worker.stores.mongo import MongoStore
from worker.stores.sqlite import SqliteStore

_STEPS_PER_CALL = 10


class WorkMeter(CommandListener):
    """Counts for one store: `steps` (SQLite instructions, in tens), `commands` and
    `documents` (MongoDB round trips, and documents returned, by collection)."""

    def __init__(self) -> None:
        self.steps = 0
        self.commands: Counter[str] = Counter()
        self.documents: Counter[str] = Counter()

    def reset(self) -> None:
        self.steps = 0
        self.commands.clear()
        self.documents.clear()

    def work(self) -> int:
        """One number to compare between runs: instructions, or commands plus documents."""
        return self.steps + sum(self.commands.values()) + sum(self.documents.values())

    def step(self) -> int:  # SQLite's progress handler: 0 lets the statement go on
        self.steps += 1
        return 0

    def started(self, event: CommandStartedEvent) -> None:
        self.commands[f"{event.command_name} {event.command.get(event.command_name)}"] += 1

    def succeeded(self, event: CommandSucceededEvent) -> None:
        cursor: dict[str, Any] = event.reply.get("cursor") or {}
        batch = cursor.get("firstBatch", cursor.get("nextBatch", []))
        found = len(batch) + (1 if event.reply.get("value") else 0)  # find_one_and_* return `value`
        if found:
            where = str(cursor.get("ns", event.command_name)).split(".", 1)[-1]  # "db.sessions": sessions
            self.documents[where] += found

    def failed(self, event: CommandFailedEvent) -> None:
        return None


@asynccontextmanager
async def metered_store(
    backend: Storage, tmp_path: Path, server: str | None
) -> AsyncIterator[tuple[SessionStore, WorkMeter]]:
    meter = WorkMeter()
    with opened_worker_store(backend, tmp_path, server) as place:
        store: SessionStore
        if backend == "sqlite":
            sqlite = SqliteStore.at_path(place.db_path)
            await sqlite.ensure_schema()
            for conn in (sqlite._db._reader, sqlite._db._writer):
                assert conn is not None
                conn.set_progress_handler(meter.step, _STEPS_PER_CALL)
            store = sqlite
        else:
            assert place.mongodb_url is not None
            client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
                place.mongodb_url, tz_aware=True, event_listeners=[meter]
            )
            store = MongoStore(client, place.mongodb_database)
            await store.ensure_schema()
        try:
            yield store, meter
        finally:
            await store.close()
