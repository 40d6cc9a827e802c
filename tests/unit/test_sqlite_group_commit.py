"""SQLite group commits: writes that arrive together commit together, and one failing write
rolls back alone (its half-done changes too) while the rest of its group lands."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.rows_db import insert_row, open_rows_db
from worker.errors import StoreUnavailable
from worker.stores.sqlite_db import Connection, SqliteDatabase


class HalfDone(Exception):
    pass


async def _open(tmp_path: Path) -> SqliteDatabase:
    return await open_rows_db(tmp_path / "group.db")


def _insert_then_fail(name: str) -> Callable[[Connection], str]:
    def run(conn: Connection) -> str:
        conn.execute("INSERT INTO rows (name) VALUES (?)", (name,))
        raise HalfDone(name)

    return run


async def _names(db: SqliteDatabase) -> list[str]:
    return await db.read(lambda conn: [row[0] for row in conn.execute("SELECT name FROM rows ORDER BY name")])


async def test_a_failing_write_rolls_back_alone_and_its_group_still_commits(tmp_path: Path) -> None:
    db = await _open(tmp_path)
    try:
        writes = [insert_row(f"ok-{i:02d}") for i in range(20)]
        writes.insert(7, _insert_then_fail("half-done"))
        writes.insert(15, insert_row("ok-03"))  # a duplicate key: fails inside SQLite
        results = await asyncio.gather(*(db.write(w) for w in writes), return_exceptions=True)
        assert sum(isinstance(r, BaseException) for r in results) == 2
        assert isinstance(results[7], HalfDone)
        landed = sorted(r for r in results if isinstance(r, str))
        assert landed == [f"ok-{i:02d}" for i in range(20)]
        assert await _names(db) == [f"ok-{i:02d}" for i in range(20)]  # nothing of the failed ones
    finally:
        await db.close()


async def test_writes_arriving_together_share_one_transaction(tmp_path: Path) -> None:
    db = await _open(tmp_path)
    commits: list[str] = []
    try:
        await db.write(lambda conn: conn.set_trace_callback(commits.append), alone=True)
        await asyncio.gather(*(db.write(insert_row(f"n{i}")) for i in range(50)))
        assert len(await _names(db)) == 50
        assert 1 <= sum(statement == "COMMIT" for statement in commits) < 10
        assert not any(statement.startswith("SAVEPOINT") for statement in commits)
    finally:
        await db.close()


async def test_a_write_on_a_closed_database_says_so(tmp_path: Path) -> None:
    db = await _open(tmp_path)
    await db.close()
    with pytest.raises(RuntimeError, match="not open"):
        await db.write(insert_row("late"))


async def test_writes_waiting_behind_a_group_when_the_store_closes_fail_instead_of_hanging(tmp_path: Path) -> None:
    db = await _open(tmp_path)
    first = asyncio.ensure_future(db.write(insert_row("first")))  # on the writer thread
    await asyncio.sleep(0)
    waiting = asyncio.ensure_future(db.write(insert_row("second")))  # waits for the next group
    await asyncio.sleep(0)
    await db.close()  # runs on the writer thread after the first group
    assert await asyncio.wait_for(first, 5) == "first"
    with pytest.raises(RuntimeError, match="closed"):
        await asyncio.wait_for(waiting, 5)


async def test_a_busy_database_fails_the_whole_group_as_transient(tmp_path: Path) -> None:
    db = await _open(tmp_path)
    blocker = sqlite3.connect(str(tmp_path / "group.db"), isolation_level=None)
    try:
        await db.write(lambda conn: conn.execute("PRAGMA busy_timeout=50"), alone=True)
        blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock: BEGIN IMMEDIATE times out
        results = await asyncio.gather(*(db.write(insert_row(f"n{i}")) for i in range(3)), return_exceptions=True)
        assert all(isinstance(r, StoreUnavailable) for r in results), results
        blocker.execute("ROLLBACK")
        assert await db.write(insert_row("after")) == "after"
    finally:
        blocker.close()
        await db.close()
