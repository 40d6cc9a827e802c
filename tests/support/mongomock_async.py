"""An in-process stand-in for pymongo's AsyncMongoClient, backed by mongomock.

Only the subset the stores use. mongomock is synchronous and in memory, so each operation runs
directly, but yields to the event loop before and after it, like a network round trip would:
concurrency tests rely on coroutines interleaving between a request and its answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import mongomock
from pymongo import UpdateOne
from pymongo.errors import AutoReconnect

Doc = dict[str, Any]
ExcFactory = Callable[[], BaseException]


def _injected() -> BaseException:
    return AutoReconnect("injected")


@dataclass(frozen=True)
class BulkResult:
    matched_count: int
    modified_count: int


class _Faults:
    """Shared by a client and everything it hands out: the next n operations fail."""

    def __init__(self) -> None:
        self.remaining = 0
        self.factory: ExcFactory = _injected

    def check(self) -> None:
        if self.remaining > 0:
            self.remaining -= 1
            raise self.factory()


class AsyncMongomockCursor:
    """Mirrors pymongo's AsyncCursor: chain sort/limit/skip, then `async for` or to_list."""

    def __init__(self, cursor: Any, faults: _Faults) -> None:
        self._cursor = cursor
        self._faults = faults
        self._docs: Iterator[Doc] | None = None

    def sort(self, key_or_list: Any, direction: Any = None) -> AsyncMongomockCursor:
        self._cursor.sort(key_or_list, direction)
        return self

    def limit(self, limit: int) -> AsyncMongomockCursor:
        self._cursor.limit(limit)
        return self

    def skip(self, skip: int) -> AsyncMongomockCursor:
        self._cursor.skip(skip)
        return self

    async def _fetch(self) -> Iterator[Doc]:
        # One "batch" with everything, fetched when first iterated (pymongo is lazy too).
        if self._docs is None:
            await asyncio.sleep(0)
            self._faults.check()
            self._docs = iter(list(self._cursor))
            await asyncio.sleep(0)
        return self._docs

    def __aiter__(self) -> AsyncMongomockCursor:
        return self

    async def __anext__(self) -> Doc:
        try:
            return next(await self._fetch())
        except StopIteration:
            raise StopAsyncIteration from None

    async def to_list(self, length: int | None = None) -> list[Doc]:
        docs = await self._fetch()
        if length is None or length <= 0:
            return list(docs)
        return [doc for _, doc in zip(range(length), docs, strict=False)]

    async def close(self) -> None:
        self._docs = iter(())


class AsyncMongomockCollection:
    def __init__(self, collection: Any, faults: _Faults) -> None:
        self._collection = collection
        self._faults = faults
        self.name: str = collection.name

    async def _run(self, method: str, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0)
        self._faults.check()
        result = getattr(self._collection, method)(*args, **kwargs)
        await asyncio.sleep(0)
        return result

    def find(self, *args: Any, **kwargs: Any) -> AsyncMongomockCursor:
        return AsyncMongomockCursor(self._collection.find(*args, **kwargs), self._faults)

    async def aggregate(self, *args: Any, **kwargs: Any) -> AsyncMongomockCursor:
        """As pymongo's async aggregate: awaited, it gives a cursor."""
        return AsyncMongomockCursor(await self._run("aggregate", *args, **kwargs), self._faults)

    async def insert_one(self, *args: Any, **kwargs: Any) -> Any:
        return await self._run("insert_one", *args, **kwargs)

    async def insert_many(self, *args: Any, **kwargs: Any) -> Any:
        return await self._run("insert_many", *args, **kwargs)

    async def find_one(self, *args: Any, **kwargs: Any) -> Any:
        return await self._run("find_one", *args, **kwargs)

    async def find_one_and_update(self, *args: Any, **kwargs: Any) -> Any:
        return await self._run("find_one_and_update", *args, **kwargs)

    async def update_one(self, *args: Any, **kwargs: Any) -> Any:
        return await self._run("update_one", *args, **kwargs)

    async def update_many(self, *args: Any, **kwargs: Any) -> Any:
        return await self._run("update_many", *args, **kwargs)

    async def replace_one(self, *args: Any, **kwargs: Any) -> Any:
        return await self._run("replace_one", *args, **kwargs)

    async def delete_one(self, *args: Any, **kwargs: Any) -> Any:
        return await self._run("delete_one", *args, **kwargs)

    async def delete_many(self, *args: Any, **kwargs: Any) -> Any:
        return await self._run("delete_many", *args, **kwargs)

    async def count_documents(self, *args: Any, **kwargs: Any) -> int:
        return int(await self._run("count_documents", *args, **kwargs))

    async def distinct(self, *args: Any, **kwargs: Any) -> list[Any]:
        return list(await self._run("distinct", *args, **kwargs))

    async def create_index(self, *args: Any, **kwargs: Any) -> str:
        partial = kwargs.get("partialFilterExpression")
        if not (partial and kwargs.get("unique")):
            return str(await self._run("create_index", *args, **kwargs))
        # mongomock checks a new partial unique index against every stored document, where MongoDB
        # checks only those its filter selects: the others are set aside while it builds.
        # (Synchronously: no other coroutine may see them missing.)
        await asyncio.sleep(0)
        self._faults.check()
        others = list(self._collection.find({"$nor": [partial]}))
        if others:
            self._collection.delete_many({"_id": {"$in": [doc["_id"] for doc in others]}})
        try:
            return str(self._collection.create_index(*args, **kwargs))
        finally:
            if others:
                self._collection.insert_many(others)

    async def create_indexes(self, *args: Any, **kwargs: Any) -> list[str]:
        return list(await self._run("create_indexes", *args, **kwargs))

    async def drop_index(self, *args: Any, **kwargs: Any) -> None:
        await self._run("drop_index", *args, **kwargs)

    async def index_information(self) -> Doc:
        return dict(await self._run("index_information"))

    async def bulk_write(self, requests: list[Any], ordered: bool = True) -> BulkResult:
        """UpdateOne requests only (mongomock's own bulk_write rejects pymongo 4's operations)."""
        await asyncio.sleep(0)
        self._faults.check()
        matched = modified = 0
        for request in requests:
            if not isinstance(request, UpdateOne):
                raise NotImplementedError(f"the shim's bulk_write takes UpdateOne, not {type(request).__name__}")
            result = self._collection.update_one(request._filter, request._doc)
            matched += result.matched_count
            modified += result.modified_count
        await asyncio.sleep(0)
        return BulkResult(matched, modified)

    async def drop(self) -> None:
        await self._run("drop")


class AsyncMongomockDatabase:
    def __init__(self, database: Any, faults: _Faults) -> None:
        self._database = database
        self._faults = faults
        self.name: str = database.name

    def __getitem__(self, name: str) -> AsyncMongomockCollection:
        return self.get_collection(name)

    def get_collection(self, name: str) -> AsyncMongomockCollection:
        return AsyncMongomockCollection(self._database.get_collection(name), self._faults)

    async def list_collection_names(self) -> list[str]:
        await asyncio.sleep(0)
        self._faults.check()
        return list(self._database.list_collection_names())

    async def drop_collection(self, name: str) -> None:
        await asyncio.sleep(0)
        self._faults.check()
        self._database.drop_collection(name)


class AsyncMongomockClient:
    """`AsyncMongomockClient()["db"]["coll"]` behaves like pymongo's async objects."""

    def __init__(self, tz_aware: bool = True) -> None:
        # mongomock honours tz_aware on reads through cursors; the stores normalize anyway.
        self._client: Any = mongomock.MongoClient(tz_aware=tz_aware)
        self._faults = _Faults()
        self.closed = False

    def fail_next(self, n: int, exc_factory: ExcFactory = _injected) -> None:
        """Make the next `n` collection operations raise `exc_factory()` before touching data."""
        self._faults.remaining = n
        self._faults.factory = exc_factory

    @property
    def pending_failures(self) -> int:
        return self._faults.remaining

    def __getitem__(self, name: str) -> AsyncMongomockDatabase:
        return self.get_database(name)

    def get_database(self, name: str) -> AsyncMongomockDatabase:
        return AsyncMongomockDatabase(self._client.get_database(name), self._faults)

    async def drop_database(self, name: str) -> None:
        await asyncio.sleep(0)
        self._client.drop_database(name)

    async def close(self) -> None:
        self.closed = True
