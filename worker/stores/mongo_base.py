"""Shared plumbing of the MongoDB store: collections, and driver errors mapped to store errors."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    AutoReconnect,
    ConnectionFailure,
    DuplicateKeyError,
    NetworkTimeout,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
    WriteConcernError,
)

from worker.errors import StoreConflict, StoreUnavailable
from worker.stores.mongo_appends import AppendBatcher
from worker.stores.mongo_docs import Doc

P = ParamSpec("P")
T = TypeVar("T")

_TRANSIENT = (ConnectionFailure, AutoReconnect, NetworkTimeout, ServerSelectionTimeoutError, WriteConcernError)
# Server error codes that say the deployment is unwell (no primary, shutting down, out of disk,
# a write concern it cannot meet), not that the operation at hand is wrong.
_UNWELL_CODES = frozenset(
    {
        6,  # HostUnreachable
        7,  # HostNotFound
        64,  # WriteConcernFailed
        89,  # NetworkTimeout
        91,  # ShutdownInProgress
        189,  # PrimarySteppedDown
        50,  # MaxTimeMSExpired
        112,  # WriteConflict (the server retries those itself, but may still return one)
        262,  # ExceededTimeLimit
        9001,  # SocketException
        10107,  # NotWritablePrimary
        11600,  # InterruptedAtShutdown
        11602,  # InterruptedDueToReplStateChange
        13435,  # NotPrimaryNoSecondaryOk
        13436,  # NotPrimaryOrSecondary
        14031,  # OutOfDiskSpace
    }
)


def store_is_unwell(exc: PyMongoError) -> bool:
    """True for errors about the deployment (unreachable, no primary, out of disk), false for
    errors about the operation (a duplicate key, a bad document)."""
    if isinstance(exc, _TRANSIENT) or exc.has_error_label("RetryableWriteError") or exc.timeout:
        return True  # a write that ran out of time (maxTimeMS, timeoutMS) is "not now", not "never"
    code = getattr(exc, "code", None)
    return isinstance(code, int) and code in _UNWELL_CODES


def unavailable(fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Turn errors of an unwell deployment into StoreUnavailable (the worker waits them out, never
    dead-lettering an event for them) so callers never import pymongo."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except PyMongoError as exc:
            if store_is_unwell(exc):
                raise StoreUnavailable(f"MongoDB could not complete {fn.__name__}: {exc}; retry shortly") from exc
            raise

    return wrapper


async def insert_new(collection: AsyncCollection[Doc], doc: Doc, what: str) -> None:
    try:
        await collection.insert_one(doc)
    except DuplicateKeyError as exc:  # ids are generated, so this is a retried insert or a bug
        raise StoreConflict(f"{what} already exists") from exc


_DUPLICATE_KEY = 11000
ONE_ACTIVE_PER_SLOT = "one_active_per_slot"
_BUILD_ATTEMPTS = 3


async def ensure_one_active_per_slot(sessions: AsyncCollection[Doc]) -> None:
    """A unique index over the active sessions of each slot: of two processes racing to open a
    slot's session, the second insert fails and that creator adopts the first one's session.
    Built once. A store older than the index may hold duplicates left by that race, on which the
    building fails: all but the newest active session of such a slot (the one every reader
    picked) are archived as superseded, and the building tried again (a worker of the previous
    version, still running during a rolling deploy, may race it a few times)."""
    if ONE_ACTIVE_PER_SLOT in await sessions.index_information():
        return
    for attempt in range(1, _BUILD_ATTEMPTS + 1):
        try:
            await sessions.create_index(
                [("agent_id", 1), ("key", 1)],
                unique=True,
                partialFilterExpression={"status": "active"},
                name=ONE_ACTIVE_PER_SLOT,
            )
            return
        except OperationFailure as exc:  # a build that meets duplicates fails with code 11000
            if exc.code != _DUPLICATE_KEY or attempt == _BUILD_ATTEMPTS:
                raise
        await _archive_duplicate_actives(sessions)


async def _archive_duplicate_actives(sessions: AsyncCollection[Doc]) -> None:
    """Walk the active sessions in (agent, key, generation) order, the unique index's own, and
    archive every one that the next one shows is not its slot's newest."""
    oldest_first = [("agent_id", 1), ("key", 1), ("generation", 1)]
    projection = {"agent_id": 1, "key": 1, "updated_at": 1}
    previous: Doc | None = None
    async for doc in sessions.find({"status": "active"}, projection).sort(oldest_first):
        if previous is not None and (previous["agent_id"], previous["key"]) == (doc["agent_id"], doc["key"]):
            change = {"status": "archived", "archived_reason": "superseded", "archived_at": previous["updated_at"]}
            where = {"_id": previous["_id"], "status": "active"}
            await sessions.update_one(where, {"$set": change, "$inc": {"version": 1}})
        previous = doc


class MongoCollections:
    def __init__(self, client: AsyncMongoClient[Doc] | Any, database: str = "sessions") -> None:
        # No I/O here: pymongo connects lazily, and ensure_schema is an explicit step.
        self._client = client
        db: AsyncDatabase[Doc] = client[database]
        self._sessions: AsyncCollection[Doc] = db["sessions"]
        self._entries: AsyncCollection[Doc] = db["entries"]
        self._checkpoints: AsyncCollection[Doc] = db["checkpoints"]
        self._summaries: AsyncCollection[Doc] = db["summaries"]
        self._settings: AsyncCollection[Doc] = db["settings"]
        self._outcomes: AsyncCollection[Doc] = db["outcomes"]
        self._meta: AsyncCollection[Doc] = db["meta"]
        self._attempts: AsyncCollection[Doc] = db["attempts"]
        self._liveness: AsyncCollection[Doc] = db["liveness"]
        self._counters: AsyncCollection[Doc] = db["agent_bytes"]  # worker/stores/mongo_bytes.py
        self._appends = AppendBatcher(self._entries, self._sessions, self._counters)
