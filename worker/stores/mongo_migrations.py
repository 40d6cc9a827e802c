"""Upgrades of older MongoDB stores, each run once and recorded in the `meta` collection."""

from __future__ import annotations

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection

from schemas import DeliveryContext
from worker.engine.idempotency import SEPARATOR, legacy_entry_key
from worker.stores.mongo_bytes import recount_agent_bytes
from worker.stores.mongo_docs import Doc

SCOPED_EVENT_KEYS = "scoped-event-keys"
STORED_BYTES = "stored-bytes"  # sessions count their transcript bytes as stored
AGENT_BYTES = "agent-bytes"  # a counter per agent of its sessions' stored bytes
_BATCH = 1000
_BACKFILL_ATTEMPTS = 5


async def migrate_event_keys(
    meta: AsyncCollection[Doc], sessions: AsyncCollection[Doc], entries: AsyncCollection[Doc]
) -> None:
    """Rewrites older entries' bare event ids as scoped keys (worker.engine.idempotency), so that an
    event applied before the upgrade is still recognised when it comes back. Resumable: each
    batch is written on its own and only bare ids are read again."""
    if await meta.find_one({"_id": SCOPED_EVENT_KEYS}) is not None:
        return
    bare = {"event_id": {"$not": {"$regex": SEPARATOR}}}
    while batch := await entries.find(bare, {"event_id": 1, "role": 1, "session_id": 1, "delivery": 1}).to_list(_BATCH):
        agents = await _agents_of(sessions, {str(doc["session_id"]) for doc in batch})
        updates = [UpdateOne({"_id": doc["_id"]}, {"$set": {"event_id": _key(doc, agents)}}) for doc in batch]
        await entries.bulk_write(updates, ordered=False)
    await meta.update_one({"_id": SCOPED_EVENT_KEYS}, {"$set": {"done": True}}, upsert=True)


async def _agents_of(sessions: AsyncCollection[Doc], session_ids: set[str]) -> dict[str, str]:
    found = sessions.find({"_id": {"$in": list(session_ids)}}, {"agent_id": 1})
    return {str(doc["_id"]): str(doc["agent_id"]) async for doc in found}


def _key(doc: Doc, agents: dict[str, str]) -> str:
    session_id = str(doc["session_id"])
    delivery = None if doc.get("delivery") is None else DeliveryContext.model_validate(doc["delivery"])
    return legacy_entry_key(str(doc["event_id"]), str(doc["role"]), session_id, agents.get(session_id, ""), delivery)


async def migrate_stored_bytes(
    meta: AsyncCollection[Doc], sessions: AsyncCollection[Doc], entries: AsyncCollection[Doc]
) -> None:
    """Gives every session its stored bytes (the sum of its entries' payloads), which stores older
    than that counter lack or hold only in part. Each session is set under a guard on its last
    entry, so an append that lands meanwhile adds its own bytes on top instead of being lost."""
    if await meta.find_one({"_id": STORED_BYTES}) is not None:
        return
    after = ""
    while batch := await sessions.find({"_id": {"$gt": after}}, {"last_seq": 1}).sort("_id", 1).to_list(_BATCH):
        for doc in batch:
            await _backfill(sessions, entries, str(doc["_id"]), int(doc["last_seq"]))
        after = str(batch[-1]["_id"])
    await meta.update_one({"_id": STORED_BYTES}, {"$set": {"done": True}}, upsert=True)


async def _backfill(sessions: AsyncCollection[Doc], entries: AsyncCollection[Doc], session_id: str, last: int) -> None:
    for _ in range(_BACKFILL_ATTEMPTS):
        counted = entries.find({"session_id": session_id, "seq": {"$lte": last}}, {"payload": 1})
        size = sum([len(doc["payload"]) async for doc in counted])
        guard = {"_id": session_id, "last_seq": last}
        if (await sessions.update_one(guard, {"$set": {"stored_bytes": size}})).matched_count == 1:
            return
        moved = await sessions.find_one({"_id": session_id}, {"last_seq": 1})
        if moved is None:
            return  # deleted meanwhile
        last = int(moved["last_seq"])


async def migrate_agent_bytes(
    meta: AsyncCollection[Doc], sessions: AsyncCollection[Doc], counters: AsyncCollection[Doc]
) -> None:
    """Computes each agent's byte counter (worker/stores/mongo_bytes.py) from its sessions, once."""
    if await meta.find_one({"_id": AGENT_BYTES}) is not None:
        return
    await recount_agent_bytes(sessions, counters)
    await meta.update_one({"_id": AGENT_BYTES}, {"$set": {"done": True}}, upsert=True)
