"""Group commit for MongoDB appends: the batched write path SQLite has, for the MongoDB store.

Appends that arrive while a batch is being written wait, and go together in the next one: one
unordered insert_many of their entries, then one unordered bulk_write of the guarded session
updates of the entries that went in, alongside one of their agents' byte counters
(worker/stores/mongo_bytes.py). Two round trips per batch instead of two per message.
Each append still gets its own answer: its insert's error, or whether its update applied. A batch
starts at once (in a task of its own, so the appends of one turn of the event loop go together):
a lone append never waits for company.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError, WriteError

from worker.engine import stages
from worker.stores.mongo_bytes import increments
from worker.stores.mongo_docs import Doc

_DUPLICATE_KEY = 11000


@dataclass(frozen=True, slots=True)
class _Append:
    entry: Doc
    guard: Doc
    change: Doc
    counted: tuple[str, int]  # (agent, bytes) for its agent's counter, once the entry is stored
    done: asyncio.Future[bool]


class AppendBatcher:
    def __init__(
        self,
        entries: AsyncCollection[Doc],
        sessions: AsyncCollection[Doc],
        counters: AsyncCollection[Doc],
        *,
        max_batch: int = 500,
    ) -> None:
        self._entries = entries
        self._sessions = sessions
        self._counters = counters
        self._max_batch = max_batch
        self._pending: list[_Append] = []
        self._flusher: asyncio.Task[None] | None = None

    async def append(self, entry: Doc, guard: Doc, change: Doc, counted: tuple[str, int]) -> bool:
        """Insert `entry`, then apply `change` to the session `guard` matches and add `counted`
        (agent, bytes) to that agent's counter. True when the update is known to have applied (and
        the entry is counted); False when it did not or the batch cannot tell (the caller then
        settles the session from its entries, and counts the entry if it is in the session). An
        insert error is raised as the driver's own, and nothing is counted."""
        stages.mark(stages.COMMIT_START)
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append(_Append(entry, guard, change, counted, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        applied = await done
        stages.mark(stages.COMMITTED)
        return applied

    async def drain(self) -> None:
        """Until every append handed in so far has been written (or has failed)."""
        if self._flusher is not None and not self._flusher.done():
            await asyncio.wait([self._flusher])

    async def _flush(self) -> None:
        while self._pending:  # those that arrive during a write go in the next batch
            batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
            try:
                await self._write(batch)
            except Exception as exc:  # the batch as a whole failed: every append in it did
                for append in batch:
                    _settle(append.done, error=exc)

    async def _write(self, batch: list[_Append]) -> None:
        failed = await self._insert(batch)
        for index, error in failed.items():
            _settle(batch[index].done, error=error)
        stored = [append for index, append in enumerate(batch) if index not in failed]
        if not stored:
            return
        sessions = self._sessions.bulk_write(
            [UpdateOne(append.guard, append.change) for append in stored], ordered=False
        )
        counted = [append.counted for append in stored]  # only entries this batch stored
        counters = increments(counted)
        if counters:  # alongside the sessions' updates, not after them: no extra round trip
            result, _ = await asyncio.gather(sessions, self._counters.bulk_write(counters, ordered=False))
        else:
            result = await sessions
        # A bulk result counts matches but does not say which ones: all applied, or none is certain.
        applied = result.matched_count == len(stored)
        if not applied and (undo := increments((agent, -size) for agent, size in counted)):
            # Rare: each of these appends settles its session itself and counts its entry then,
            # unless the session is gone (an append racing a deletion counts nothing).
            await self._counters.bulk_write(undo, ordered=False)
        for append in stored:
            _settle(append.done, result=applied)

    async def _insert(self, batch: list[_Append]) -> dict[int, Exception]:
        """Insert the batch's entries; the errors of those that did not go in, by position."""
        try:
            await self._entries.insert_many([append.entry for append in batch], ordered=False)
        except BulkWriteError as exc:
            if exc.details.get("writeConcernErrors"):
                raise
            return {error["index"]: _write_error(error) for error in exc.details.get("writeErrors", [])}
        return {}


def _settle(done: asyncio.Future[bool], *, result: bool = False, error: Exception | None = None) -> None:
    """Hand an append its answer, unless its caller gave up on it meanwhile (a cancelled wait)."""
    if done.done():
        return
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(result)


def _write_error(error: Doc) -> Exception:
    message, code = str(error.get("errmsg", "write failed")), int(error.get("code", 0))
    if code == _DUPLICATE_KEY:
        return DuplicateKeyError(message, code, error)
    return WriteError(message, code, error)
