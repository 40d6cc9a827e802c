"""Durable delivery attempts and the write probe of the SQLite store (mixed into SqliteStore).

Attempts are written only for redelivered events (a first delivery has met no crash yet) and
deleted once the event is settled, so the table holds only events in the middle of a crash loop.
"""

from __future__ import annotations

from datetime import datetime

from worker.stores.sqlite_db import Connection, SqliteDatabase
from worker.stores.sqlite_rows import to_ms

ATTEMPTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS attempts (
    key TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS liveness (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL
);
"""
_RECORD = (
    "INSERT INTO attempts (key, count, at) VALUES (?, 1, ?)"
    " ON CONFLICT (key) DO UPDATE SET count = count + 1, at = excluded.at RETURNING count"
)


class SqliteAttempts:
    _db: SqliteDatabase

    async def record_attempt(self, key: str, at: datetime) -> int:
        """Count one more attempt at the event `key`, committed before this returns; its total."""

        def run(conn: Connection) -> int:
            return int(conn.execute(_RECORD, (key, to_ms(at))).fetchone()[0])

        return await self._db.write(run)

    async def forget_attempts(self, key: str) -> None:
        await self._db.write(lambda conn: conn.execute("DELETE FROM attempts WHERE key = ?", (key,)))

    async def check_writable(self, at: datetime) -> None:
        """A real (tiny) write: a full disk or a read-only file fails it, a read would not."""
        await self._db.write(
            lambda conn: conn.execute(
                "INSERT INTO liveness (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at",
                (to_ms(at),),
            )
        )
