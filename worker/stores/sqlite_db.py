"""SQLite connections (a writer, a reader, one for point reads) driven from asyncio, with group commits.

Writes are group-committed: the write functions handed in during one turn of the event loop, or
while a group is being written, run together in the next transaction (should one fail, the group
runs again with a savepoint per function, so that one rolls back alone), and each completes only
when that transaction has committed. A small group (a lone message's) commits on the event loop
itself when the writers' lock (worker/stores/sqlite_lock.py) and SQLite's are free, as they are
unless another process is writing: a transaction of a few rows without a sync (WAL,
synchronous=NORMAL) takes less than handing it to a thread and back. The writer thread commits
the rest (a backlog's groups, bulky writes, and any group that finds a lock taken, for which it
waits). WAL checkpoints, which sync, run on the reader thread. Reads run on the reader thread, beside
the writer; point reads (a row by key) run on the event loop, on a connection that never waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from worker.engine import stages
from worker.errors import StoreOpenFailed, StoreUnavailable
from worker.stores.sqlite_lock import WriterLock, lock_path
from worker.stores.sqlite_open import check_file, open_failure

T = TypeVar("T")
Connection = sqlite3.Connection

# Primary result codes that say the store is unwell (full, read-only, failing, corrupt, locked),
# not that the write at hand is wrong: the worker holds its events and waits for the store.
_UNWELL_CODES = frozenset(
    {
        sqlite3.SQLITE_PERM,
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_NOMEM,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_PROTOCOL,
        sqlite3.SQLITE_NOLFS,
        sqlite3.SQLITE_NOTADB,
    }
)


# A group of at most this many writes commits on the event loop when the locks are free: a lone
# message's commit then takes less than a hand-off to the writer thread and back. Larger groups
# (a backlog) go to the writer thread, where SQLite's work runs beside the event loop and the
# next group grows while this one is written.
LOOP_GROUP_WRITES = 4

# The writer's commits never checkpoint (a checkpoint syncs, and a commit may run on the event
# loop): the reader thread runs one, passive, after every this many groups.
CHECKPOINT_EVERY_GROUPS = 100


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


def _connect_writer(path: str, busy_timeout_ms: int) -> Connection:
    conn = _connect(path, busy_timeout_ms)
    conn.execute("PRAGMA wal_autocheckpoint=0")
    return conn


def _checkpoint(conn: Connection) -> None:
    with contextlib.suppress(sqlite3.Error):  # a busy or failing checkpoint is tried again later
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")


Outcome = tuple[bool, Any]
Done = Future[list[Outcome]]
Prepare = Callable[[], object]
# Writes, what each does before the transaction (or None), and their callers' futures.
Group = list[tuple[Callable[[Connection], Any], Prepare | None, asyncio.Future[Any]]]


def _settle(group: Group, outcomes: list[Outcome]) -> None:
    """Hand each write of a group its outcome: its result, or its error (mapped as _mapped says)."""
    for (_, _, future), (ok, value) in zip(group, outcomes, strict=True):
        if future.done():
            continue  # its caller was cancelled
        if ok:
            future.set_result(value)
        else:
            future.set_exception(_mapped(value))


def _call_back(loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: Any) -> None:
    """Run `callback(*args)` on the event loop, from the writer thread; not once the loop is closed
    (a shutdown's last group: nobody waits for it any more)."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback, *args)


def _prepare(group: Group) -> None:
    """What each write does before the transaction (counting tokens): outside the locks, so that
    it does not keep other processes' writers waiting."""
    for _, prepare, _ in group:
        if prepare is not None:
            with contextlib.suppress(Exception):  # a failure shows again when its write runs
                prepare()


def _run_group(conn: Connection, lock: WriterLock, group: Group) -> list[Outcome]:
    """Every write's preparation (done already for a group that tried the event loop first: it
    is kept), then every write in one transaction, committed once while holding the writers' lock
    (waiting for it: the writer thread's part).

    The usual group succeeds whole and runs without savepoints. If a function fails (a duplicate,
    a conflict: rare), the transaction is rolled back and the group run again with a savepoint per
    function, so that only the failing one's changes are undone. Write functions only touch the
    database, so running one twice is safe.
    """
    _prepare(group)
    with lock.held():
        return _transaction(conn, [fn for fn, _, _ in group])


def _run_here(conn: Connection, lock: WriterLock, group: Group, busy_timeout_ms: int) -> list[Outcome] | None:
    """The group committed at once, on this thread, if neither the writers' lock nor SQLite's is
    taken; None (nothing done) if one is: the writer thread waits for it."""
    if not lock.try_hold():
        return None
    try:
        conn.execute("PRAGMA busy_timeout=0")  # SQLite's lock taken (a writer outside ours): do not wait here
        try:
            return _transaction(conn, [fn for fn, _, _ in group])
        except sqlite3.OperationalError as exc:
            if (getattr(exc, "sqlite_errorcode", 0) & 0xFF) == sqlite3.SQLITE_BUSY and not conn.in_transaction:
                return None
            raise
        finally:
            conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    finally:
        lock.release()


def _transaction(conn: Connection, functions: list[Callable[[Connection], Any]]) -> list[Outcome]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        outcomes = _run_together(conn, functions)
        if outcomes is None:
            conn.execute("ROLLBACK")
            conn.execute("BEGIN IMMEDIATE")
            outcomes = _run_isolated(conn, functions)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            # After a full disk or an I/O error SQLite may have rolled back already: the original
            # error is the one worth reporting, not the rollback's.
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
    return outcomes


def _run_together(conn: Connection, functions: list[Callable[[Connection], Any]]) -> list[Outcome] | None:
    """Every function's result, or None as soon as one fails. An unwell store (a full disk, say,
    after which SQLite has rolled the transaction back itself) fails the whole group instead."""
    outcomes: list[Outcome] = []
    for fn in functions:
        try:
            outcomes.append((True, fn(conn)))
        except Exception as exc:  # rerun isolated, where the failure is handed to that function's caller
            if store_is_unwell(exc) or not conn.in_transaction:
                raise
            return None
    return outcomes


def _run_isolated(conn: Connection, functions: list[Callable[[Connection], Any]]) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for fn in functions:
        conn.execute("SAVEPOINT one")
        try:
            outcomes.append((True, fn(conn)))
        except Exception as exc:  # handed to that function's caller, the others go on
            if store_is_unwell(exc) or not conn.in_transaction:
                raise  # the store, not this write: the whole group fails with it
            conn.execute("ROLLBACK TO one")
            outcomes.append((False, exc))
        conn.execute("RELEASE one")
    return outcomes


class SqliteDatabase:
    def __init__(self, path: str, *, busy_timeout_ms: int = 5000) -> None:
        if path == ":memory:":
            raise ValueError("use a file path: the writer and reader threads need a shared database")
        self.path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._lock = WriterLock(lock_path(path), busy_timeout_ms)
        self._writer_pool: ThreadPoolExecutor | None = None
        self._reader_pool: ThreadPoolExecutor | None = None
        self._writer: Connection | None = None
        self._reader: Connection | None = None
        self._looker: Connection | None = None  # point reads, on the event loop (see read())
        self._pending: Group = []
        self._flushing = False  # a group is due or being written; writes meanwhile wait for the next
        self._due: asyncio.Handle | None = None  # the next group, due at the end of this loop turn
        self._groups = 0
        self._alone = 0  # writes outside a transaction running on the writer thread
        self._bulky_pending = False  # the next group holds a bulky write: the writer thread commits it

    async def open(self) -> None:
        if self._writer is not None:
            return
        self._writer_pool = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        self._reader_pool = ThreadPoolExecutor(1, thread_name_prefix="sqlite-reader")
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._writer_pool, check_file, self.path)
            writer = partial(_connect_writer, self.path, self._busy_timeout_ms)
            self._writer = await loop.run_in_executor(self._writer_pool, writer)
            await loop.run_in_executor(self._writer_pool, self._lock.open)
            reader = partial(_connect, self.path, self._busy_timeout_ms)
            self._reader = await loop.run_in_executor(self._reader_pool, reader)
            self._looker = await loop.run_in_executor(self._reader_pool, partial(_connect, self.path, 0))
        except (sqlite3.Error, OSError, StoreOpenFailed) as exc:
            await self.close()
            raise (exc if isinstance(exc, StoreOpenFailed) else open_failure(self.path, exc)) from exc

    async def close(self) -> None:
        """Close both connections; a group already on the writer thread commits first, a group
        due commits now, and writes still waiting for a group fail ("closed") instead of meeting a
        closed connection."""
        loop = asyncio.get_running_loop()
        if self._due is not None:
            self._due.cancel()
            group = self._pending
            self._commit_pending()
            if group:  # waited for, not gathered: a cancelled close must not cancel their callers
                await asyncio.wait([write[2] for write in group])
        if self._looker is not None:
            self._looker.close()
        opened = ((self._writer_pool, self._writer), (self._reader_pool, self._reader))
        self._writer = self._reader = self._looker = None
        for pool, conn in opened:
            if pool is not None:
                if conn is not None:
                    await loop.run_in_executor(pool, conn.close)
                pool.shutdown(wait=True)  # a failed open leaves a pool without its connection
        self._lock.close()
        self._writer_pool = self._reader_pool = None

    async def write(
        self, fn: Callable[[Connection], T], *, alone: bool = False, bulky: bool = False, prepare: Prepare | None = None
    ) -> T:
        """Run `fn` in the next group commit, `prepare` (if given) just before the transaction;
        `alone` runs `fn` on the writer thread outside any transaction (DDL, PRAGMAs). A `bulky`
        write (one that may touch many rows: retention, pruning) sends its group to the writer
        thread, so that it never holds up the event loop."""
        if self._writer is None or self._writer_pool is None:
            raise RuntimeError("the SQLite store is not open; call ensure_schema() or open() first")
        if alone:
            self._alone += 1  # until it is done, groups go to the writer thread too: one connection, one thread
            try:
                return await self._run(self._writer_pool, fn, self._writer)
            finally:
                self._alone -= 1
        stages.mark(stages.COMMIT_START)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append((fn, prepare, future))
        self._bulky_pending = self._bulky_pending or bulky
        if not self._flushing:  # the writes handed in during this turn of the loop go together
            self._flushing = True
            self._due = loop.call_soon(self._commit_pending)
        result = await future
        stages.mark(stages.COMMITTED)
        return result

    def _commit_pending(self) -> None:
        """Commit the waiting writes as one group: here and now if it is small and the locks are
        free, else on the writer thread. Its completion comes back as a plain callback, which hands
        each write its outcome and starts the next group: no task and no future chain per group."""
        group, self._pending = self._pending, []
        here = len(group) <= LOOP_GROUP_WRITES and not (self._alone or self._bulky_pending)
        self._bulky_pending = False
        self._due = None
        if self._writer is None or self._writer_pool is None:
            self._flushing = False
            _settle(group, [(False, RuntimeError("the SQLite store was closed"))] * len(group))
            return
        if here:
            _prepare(group)
            try:
                outcomes = _run_here(self._writer, self._lock, group, self._busy_timeout_ms)
            except BaseException as exc:  # the commit itself failed: every write in the group failed
                outcomes = [(False, exc)] * len(group)
            if outcomes is not None:
                self._group_done(group, outcomes)
                return
        loop = asyncio.get_running_loop()
        try:
            committed = self._writer_pool.submit(_run_group, self._writer, self._lock, group)
        except RuntimeError as exc:  # the pool is shutting down
            self._flushing = False
            _settle(group, [(False, exc)] * len(group))
            return
        committed.add_done_callback(lambda done: _call_back(loop, self._thread_done, group, done))

    def _thread_done(self, group: Group, done: Done) -> None:
        try:
            outcomes = done.result()
        except BaseException as exc:  # the commit itself failed: every write in the group failed
            outcomes = [(False, exc)] * len(group)
        self._group_done(group, outcomes)

    def _group_done(self, group: Group, outcomes: list[Outcome]) -> None:
        self._flushing = False
        _settle(group, outcomes)
        self._groups += 1
        if self._groups % CHECKPOINT_EVERY_GROUPS == 0 and self._reader is not None and self._reader_pool:
            with contextlib.suppress(RuntimeError):  # the pool is shutting down: SQLite checkpoints on close
                self._reader_pool.submit(_checkpoint, self._reader)
        if self._pending:  # these arrived while this group was written: they waited already
            self._flushing = True
            self._due = asyncio.get_running_loop().call_soon(self._commit_pending)

    async def read(self, fn: Callable[[Connection], T], *, point: bool = False) -> T:
        """Run `fn` on the reader thread; a `point` read (a row or two by key: the hot path's
        lookups) runs here and now instead, on a connection of its own that never waits: a WAL
        reader is not held up by writers, and should SQLite be busy (recovering the WAL after a
        crash, say) the read goes to the reader thread, which waits."""
        if self._reader is None or self._reader_pool is None:
            raise RuntimeError("the SQLite store is not open; call ensure_schema() or open() first")
        if point and self._looker is not None:
            try:
                return fn(self._looker)
            except sqlite3.OperationalError as exc:
                if (getattr(exc, "sqlite_errorcode", 0) & 0xFF) != sqlite3.SQLITE_BUSY:
                    raise _mapped(exc) from exc
            except (sqlite3.Error, OSError) as exc:
                raise _mapped(exc) from exc
        return await self._run(self._reader_pool, fn, self._reader)

    @staticmethod
    async def _run(pool: ThreadPoolExecutor, fn: Callable[[Connection], T], conn: Connection) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, fn, conn)
        except (sqlite3.Error, OSError) as exc:
            raise _mapped(exc) from exc


def store_is_unwell(exc: BaseException) -> bool:
    """True for errors about the database (its disk, file or lock), false for errors about the
    statement (a constraint, a bug). The writers' lock file fails with OSError."""
    if isinstance(exc, OSError):
        return True
    if not isinstance(exc, sqlite3.Error):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:  # raised by our own code (the writers' lock timing out) with a message only
        return "database is locked" in str(exc)
    return (code & 0xFF) in _UNWELL_CODES


def _mapped(exc: BaseException) -> BaseException:
    """Errors of an unwell store become StoreUnavailable, which the worker waits out (holding its
    events, never dead-lettering them); the rest stay as they are."""
    if store_is_unwell(exc):
        unavailable = StoreUnavailable(f"SQLite cannot be used: {exc}")
        unavailable.__cause__ = exc
        return unavailable
    return exc
