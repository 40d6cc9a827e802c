"""A SqliteDatabase with one table of names, for the tests of its group commits and its lock."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from worker.stores.sqlite_db import Connection, SqliteDatabase


async def open_rows_db(path: Path, busy_timeout_ms: int = 5000) -> SqliteDatabase:
    db = SqliteDatabase(str(path), busy_timeout_ms=busy_timeout_ms)
    await db.open()
    await db.write(lambda conn: conn.execute("CREATE TABLE IF NOT EXISTS rows (name TEXT PRIMARY KEY)"), alone=True)
    return db


def insert_row(name: str) -> Callable[[Connection], str]:
    """A write that inserts `name` and returns it."""

    def run(conn: Connection) -> str:
        conn.execute("INSERT INTO rows (name) VALUES (?)", (name,))
        return name

    return run
