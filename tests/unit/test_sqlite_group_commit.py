"""SQLite group commits: writes that arrive together commit together, and one failing write
rolls back alone (its half-done changes too) while the rest of its group lands; a group commits
on the event loop while the locks are free, else on the writer thread, which waits for them."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.rows_db import insert_row, open_rows_db
from worker.errors import StoreUnavailable
from worker.stores import sqlite_db
from worker.stores.sqlite_db import Connection, SqliteDatabase
from worker.stores.sqlite_lock import WriterLock, lock_path


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


def _hold_writers_lock(path: Path, seconds: float, taken: threading.Event) -> None:
    """Another process's writer, holding the writers' lock for `seconds`."""
    other = WriterLock(lock_path(str(path)), 1000)
    other.open()
    try:
        with other.held():
            taken.set()
            time.sleep(seconds)
    finally:
        other.close()


async def test_writes_waiting_behind_a_group_when_the_store_closes_fail_instead_of_hanging(tmp_path: Path) -> None:
    db = await _open(tmp_path)
    taken = threading.Event()
    holder = threading.Thread(target=_hold_writers_lock, args=(tmp_path / "group.db", 0.2, taken))
    holder.start()
    try:
        assert taken.wait(5)
        first = asyncio.ensure_future(db.write(insert_row("first")))  # waits for the lock on the writer thread
        await asyncio.sleep(0.01)
        waiting = asyncio.ensure_future(db.write(insert_row("second")))  # waits for the next group
        await asyncio.sleep(0)
        await db.close()  # runs on the writer thread after the first group
        assert await asyncio.wait_for(first, 5) == "first"
        with pytest.raises(RuntimeError, match="closed"):
            await asyncio.wait_for(waiting, 5)
    finally:
        holder.join()


def _insert_noting_thread(name: str, threads: list[str]) -> Callable[[Connection], str]:
    def run(conn: Connection) -> str:
        threads.append(threading.current_thread().name)
        conn.execute("INSERT INTO rows (name) VALUES (?)", (name,))
        return name

    return run


async def test_with_the_locks_free_a_group_commits_on_the_event_loop(tmp_path: Path) -> None:
    db = await _open(tmp_path)
    threads: list[str] = []
    try:
        assert await db.write(_insert_noting_thread("alone", threads)) == "alone"
        assert threads == [threading.current_thread().name]
    finally:
        await db.close()


async def test_a_group_larger_than_a_lone_messages_commits_on_the_writer_thread(tmp_path: Path) -> None:
    db = await _open(tmp_path)
    threads: list[str] = []
    try:
        count = sqlite_db.LOOP_GROUP_WRITES + 1
        names = [f"row{index}" for index in range(count)]
        assert await asyncio.gather(*(db.write(_insert_noting_thread(name, threads)) for name in names)) == names
        assert len(threads) == count and all(name.startswith("sqlite-writer") for name in threads)
        assert await _names(db) == sorted(names)
    finally:
        await db.close()


async def test_a_bulky_write_takes_its_whole_group_to_the_writer_thread(tmp_path: Path) -> None:
    db = await _open(tmp_path)
    threads: list[str] = []
    try:
        small = asyncio.ensure_future(db.write(_insert_noting_thread("small", threads)))
        bulky = asyncio.ensure_future(db.write(_insert_noting_thread("bulky", threads), bulky=True))
        assert list(await asyncio.gather(small, bulky)) == ["small", "bulky"]
        assert len(threads) == 2 and all(name.startswith("sqlite-writer") for name in threads)
        assert await db.write(_insert_noting_thread("next", threads)) == "next"  # the next group: on the loop
        assert threads[2] == threading.current_thread().name
    finally:
        await db.close()


async def test_while_another_process_writes_a_group_waits_for_it_on_the_writer_thread(tmp_path: Path) -> None:
    db = await _open(tmp_path)
    threads: list[str] = []
    taken = threading.Event()
    holder = threading.Thread(target=_hold_writers_lock, args=(tmp_path / "group.db", 0.2, taken))
    holder.start()
    try:
        assert taken.wait(5)
        began = time.monotonic()
        tick = asyncio.ensure_future(asyncio.sleep(0.05))  # the event loop stays free meanwhile
        assert await db.write(_insert_noting_thread("later", threads)) == "later"
        assert tick.done() and time.monotonic() - began > 0.1
        assert len(threads) == 1 and threads[0].startswith("sqlite-writer")
        assert await _names(db) == ["later"]
    finally:
        holder.join()
        await db.close()


async def test_the_reader_thread_checkpoints_the_wal_every_so_many_groups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_db, "CHECKPOINT_EVERY_GROUPS", 3)
    db = await _open(tmp_path)
    statements: list[str] = []
    try:
        assert await db.write(lambda conn: conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0], alone=True) == 0
        await db.read(lambda conn: conn.set_trace_callback(statements.append))
        for n in range(3):
            await db.write(insert_row(f"n{n}"))
        await db.read(lambda conn: None)  # after the checkpoint on the reader thread
        assert statements.count("PRAGMA wal_checkpoint(PASSIVE)") == 1
    finally:
        await db.close()


async def test_a_busy_database_fails_the_whole_group_as_transient(tmp_path: Path) -> None:
    db = await open_rows_db(tmp_path / "group.db", busy_timeout_ms=50)
    blocker = sqlite3.connect(str(tmp_path / "group.db"), isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock: BEGIN IMMEDIATE times out
        results = await asyncio.gather(*(db.write(insert_row(f"n{i}")) for i in range(3)), return_exceptions=True)
        assert all(isinstance(r, StoreUnavailable) for r in results), results
        blocker.execute("ROLLBACK")
        assert await db.write(insert_row("after")) == "after"
    finally:
        blocker.close()
        await db.close()


async def test_a_point_read_runs_on_the_event_loop_and_goes_to_the_reader_thread_when_sqlite_is_busy(
    tmp_path: Path,
) -> None:
    db = await _open(tmp_path)
    threads: list[str] = []
    busy_here = [True]

    def count(conn: Connection) -> int:
        threads.append(threading.current_thread().name)
        if busy_here[0] and threading.current_thread() is threading.main_thread():
            busy = sqlite3.OperationalError("database is locked")
            busy.sqlite_errorcode = sqlite3.SQLITE_BUSY  # as SQLite says it (a WAL being recovered, say)
            raise busy
        return int(conn.execute("SELECT count(*) FROM rows").fetchone()[0])

    try:
        await db.write(insert_row("one"))
        assert await db.read(count, point=True) == 1
        assert threads[0] == threading.main_thread().name and threads[1].startswith("sqlite-reader")
        busy_here[0] = False
        assert await db.read(count, point=True) == 1
        assert threads[2:] == [threading.main_thread().name]
    finally:
        await db.close()


async def test_while_a_write_outside_a_transaction_runs_groups_go_to_the_writer_thread_behind_it(
    tmp_path: Path,
) -> None:
    db = await _open(tmp_path)
    threads: list[str] = []
    try:
        slow = asyncio.ensure_future(db.write(lambda conn: time.sleep(0.1), alone=True))
        await asyncio.sleep(0.01)
        assert await db.write(_insert_noting_thread("behind", threads)) == "behind"
        assert slow.done() and threads[0].startswith("sqlite-writer")
    finally:
        await db.close()
