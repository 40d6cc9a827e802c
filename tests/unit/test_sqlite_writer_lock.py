"""The SQLite writers' lock: a store waits for another process's writer to finish and starts
soon after, gives up as a transient failure after its busy timeout, and two stores on one file
write in turn. (A flock belongs to an open file, so two stores in one process exclude each other
as two processes would.)"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support.rows_db import insert_row, open_rows_db
from worker.errors import StoreUnavailable
from worker.stores.sqlite_lock import WriterLock, lock_path


def _hold(path: Path, seconds: float, taken: threading.Event) -> None:
    """Another process's writer: hold the lock for `seconds`."""
    other = WriterLock(lock_path(str(path)), 1000)
    other.open()
    try:
        with other.held():
            taken.set()
            time.sleep(seconds)
    finally:
        other.close()


async def test_a_write_waits_for_the_other_writer_and_starts_soon_after(tmp_path: Path) -> None:
    db = await open_rows_db(tmp_path / "s.db")
    taken = threading.Event()
    holder = threading.Thread(target=_hold, args=(tmp_path / "s.db", 0.3, taken))
    try:
        holder.start()
        assert taken.wait(5)
        began = time.monotonic()
        assert await db.write(insert_row("after")) == "after"
        waited = time.monotonic() - began
        assert 0.2 < waited < 1.0, waited  # it waited for the holder, and not much longer
    finally:
        holder.join()
        await db.close()


async def test_a_writer_held_up_past_the_busy_timeout_fails_as_transient(tmp_path: Path) -> None:
    db = await open_rows_db(tmp_path / "s.db", busy_timeout_ms=100)
    taken = threading.Event()
    holder = threading.Thread(target=_hold, args=(tmp_path / "s.db", 1.0, taken))
    try:
        holder.start()
        assert taken.wait(5)
        with pytest.raises(StoreUnavailable, match="writers' lock"):
            await db.write(insert_row("late"))
        holder.join()
        assert await db.write(insert_row("later")) == "later"
    finally:
        holder.join()
        await db.close()


async def test_two_stores_on_one_file_write_in_turn_and_lose_nothing(tmp_path: Path) -> None:
    one, two = await open_rows_db(tmp_path / "s.db"), await open_rows_db(tmp_path / "s.db")
    try:
        writes = [store.write(insert_row(f"{n}-{i:03d}")) for i in range(200) for n, store in (("a", one), ("b", two))]
        await asyncio.gather(*writes)
        count = await one.read(lambda conn: conn.execute("SELECT count(*) FROM rows").fetchone()[0])
        assert count == 400
    finally:
        await one.close()
        await two.close()


_HOLD_AND_HANG = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(60)
"""


def test_a_holder_that_dies_leaves_the_lock_free(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db-lock")
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_AND_HANG, path], stdout=subprocess.PIPE, text=True)
    lock = WriterLock(path, 100)
    lock.open()
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(Exception, match="database is locked"), lock.held():
            pass
        holder.kill()
        holder.wait(10)
        with lock.held():  # the kernel freed it with its holder
            pass
    finally:
        holder.kill()
        holder.wait(10)
        lock.close()


async def test_a_writes_preparation_runs_before_it_takes_the_lock(tmp_path: Path) -> None:
    db = await open_rows_db(tmp_path / "s.db")
    probe = WriterLock(lock_path(str(tmp_path / "s.db")), 0)
    probe.open()
    seen: list[bool] = []

    def prepare() -> None:  # on the writer thread, before the transaction: the lock is still free
        with probe.held():
            seen.append(True)

    try:
        assert await db.write(insert_row("prepared"), prepare=prepare) == "prepared"
        assert seen == [True]
    finally:
        probe.close()
        await db.close()
