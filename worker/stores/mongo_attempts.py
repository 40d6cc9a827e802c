"""Durable delivery attempts and the write probe of the MongoDB store (mixed into MongoStore).

Attempts are written only for redelivered events (a first delivery has met no crash yet) and
deleted once the event is settled, so the collection holds only events in a crash loop.
"""

from __future__ import annotations

from datetime import datetime

from pymongo import ReturnDocument

from worker.stores.mongo_base import MongoCollections, unavailable


class MongoAttempts(MongoCollections):
    @unavailable
    async def record_attempt(self, key: str, at: datetime) -> int:
        """Count one more attempt at the event `key`, acknowledged before this returns; its total."""
        doc = await self._attempts.find_one_and_update(
            {"_id": key}, {"$inc": {"count": 1}, "$set": {"at": at}}, upsert=True, return_document=ReturnDocument.AFTER
        )
        assert doc is not None  # an upsert returning the document after the update always finds one
        return int(doc["count"])

    @unavailable
    async def forget_attempts(self, key: str) -> None:
        await self._attempts.delete_one({"_id": key})

    @unavailable
    async def check_writable(self, at: datetime) -> None:
        """A real write: a deployment without a primary (or out of disk) fails it, a ping would not."""
        await self._liveness.update_one({"_id": "probe"}, {"$set": {"at": at}}, upsert=True)
