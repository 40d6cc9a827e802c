"""Upgrades of older MongoDB stores, each run once and recorded in the `meta` collection."""

from __future__ import annotations

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection

from schemas import DeliveryContext
from worker.engine.idempotency import SEPARATOR, legacy_entry_key
from worker.stores.mongo_docs import Doc

SCOPED_EVENT_KEYS = "scoped-event-keys"
_BATCH = 1000


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
