"""The writers' lock: one SQLite writer at a time across every process sharing a store file.

A flock on a file beside the database, taken before SQLite's own write lock. A writer that finds
it taken polls it every 50-500 µs, so it starts soon after the holder commits; SQLite's busy
handler would sleep 1, 2, 5, 10... ms between looks (measurements: docs/benchmarks/history.md).
The kernel frees a flock when its holder dies; a writer that waits longer than the busy timeout
fails with SQLite's own "database is locked" error, which callers retry as a transient failure.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import time
from collections.abc import Iterator

_FIRST_PAUSE_S = 50e-6
_LONGEST_PAUSE_S = 500e-6


def lock_path(database: str) -> str:
    """The lock file of a database file (next to its -wal and -shm files)."""
    return f"{database}-lock"


class WriterLock:
    """An exclusive flock on `path`, taken around each write transaction by one writer at a time."""

    def __init__(self, path: str, timeout_ms: int) -> None:
        self.path = path
        self._timeout_s = timeout_ms / 1000
        self._fd: int | None = None

    def open(self) -> None:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # frees the lock too, should it be held

    def try_hold(self) -> bool:
        """Take the lock if it is free at once (then release() it); False if another holds it."""
        if self._fd is None:
            raise RuntimeError("the SQLite writer lock is not open")
        return _try_lock(self._fd)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Hold the lock for the body of the with statement."""
        fd = self._fd
        if fd is None:
            raise RuntimeError("the SQLite writer lock is not open")
        self._acquire(fd)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _acquire(self, fd: int) -> None:
        # Polled, not a blocking flock: a blocking one could not give up after the busy timeout.
        if _try_lock(fd):
            return
        deadline, pause = time.monotonic() + self._timeout_s, _FIRST_PAUSE_S
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                timeout_ms = round(self._timeout_s * 1000)
                raise sqlite3.OperationalError(
                    f"database is locked: another process held the writers' lock ({self.path}) for {timeout_ms} ms"
                )
            time.sleep(pause)
            pause = min(pause * 2, _LONGEST_PAUSE_S)


def _try_lock(fd: int) -> bool:
    """Take the flock if it is free; False if another open file holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
