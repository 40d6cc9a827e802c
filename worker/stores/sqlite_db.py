"""A SQLite connection pair (one writer, one reader) driven from asyncio through their own threads.

sqlite3 is a blocking driver; every call runs on a dedicated thread so the event loop never
blocks. One writer thread serializes writes (SQLite allows one writer anyway) and makes each
write function a single transaction; WAL lets the reader thread run alongside it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TypeVar

from worker.errors import StoreUnavailable

T = TypeVar("T")
Connection = sqlite3.Connection

_TRANSIENT = ("database is locked", "database is busy", "disk i/o error")


def _connect(path: str, busy_timeout_ms: int) -> Connection:
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    # Rewritten or deleted records (re-sealed plaintext, retention) are zeroed, not left in free space.
    conn.execute("PRAGMA secure_delete=ON")
    return conn


@contextmanager
def transaction(conn: Connection) -> Iterator[Connection]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error: one write function, one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class SqliteDatabase:
    def __init__(self, path: str, *, busy_timeout_ms: int = 5000) -> None:
        if path == ":memory:":
            raise ValueError("use a file path: the writer and reader threads need a shared database")
        self.path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._writer_pool: ThreadPoolExecutor | None = None
        self._reader_pool: ThreadPoolExecutor | None = None
        self._writer: Connection | None = None
        self._reader: Connection | None = None

    async def open(self) -> None:
        if self._writer is not None:
            return
        self._writer_pool = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        self._reader_pool = ThreadPoolExecutor(1, thread_name_prefix="sqlite-reader")
        loop = asyncio.get_running_loop()
        connect = partial(_connect, self.path, self._busy_timeout_ms)
        self._writer = await loop.run_in_executor(self._writer_pool, connect)
        self._reader = await loop.run_in_executor(self._reader_pool, connect)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        for pool, conn in ((self._writer_pool, self._writer), (self._reader_pool, self._reader)):
            if pool is not None and conn is not None:
                await loop.run_in_executor(pool, conn.close)
                pool.shutdown(wait=True)
        self._writer = self._reader = None
        self._writer_pool = self._reader_pool = None

    async def write(self, fn: Callable[[Connection], T]) -> T:
        if self._writer is None or self._writer_pool is None:
            raise RuntimeError("the SQLite store is not open; call ensure_schema() or open() first")
        return await self._run(self._writer_pool, fn, self._writer)

    async def read(self, fn: Callable[[Connection], T]) -> T:
        if self._reader is None or self._reader_pool is None:
            raise RuntimeError("the SQLite store is not open; call ensure_schema() or open() first")
        return await self._run(self._reader_pool, fn, self._reader)

    @staticmethod
    async def _run(pool: ThreadPoolExecutor, fn: Callable[[Connection], T], conn: Connection) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, fn, conn)
        except sqlite3.OperationalError as exc:
            if any(marker in str(exc).lower() for marker in _TRANSIENT):
                raise StoreUnavailable(f"SQLite is busy or failing: {exc}") from exc
            raise
