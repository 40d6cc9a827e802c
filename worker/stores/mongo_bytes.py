"""The per-agent byte counter of the MongoDB store: one `agent_bytes` document per agent.

It holds the agent's transcript bytes as stored (the sum of its sessions' `stored_bytes`) and
changes by `$inc`, atomic under concurrent workers, from the writer that changed those bytes:
an append counts only the entries its own insert stored (a redelivered event's insert fails on
the unique event id, so it never counts twice), a deletion only the sessions its own
find_one_and_delete removed. The store has no multi-document transactions, so a worker that dies
between a write and its `$inc` leaves the counter short by that write; the migration's recount
(`recount_agent_bytes`) computes every counter again from the sessions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection

from worker.stores.mongo_docs import Doc


def increments(changes: Iterable[tuple[str, int]]) -> list[UpdateOne]:
    """One upserting `$inc` per agent for (agent, bytes) changes; none for a zero sum."""
    totals: defaultdict[str, int] = defaultdict(int)
    for agent_id, delta in changes:
        totals[agent_id] += delta
    return [
        UpdateOne({"_id": agent}, {"$inc": {"bytes": delta}}, upsert=True) for agent, delta in totals.items() if delta
    ]


async def count_bytes(counters: AsyncCollection[Doc], changes: Iterable[tuple[str, int]]) -> None:
    updates = increments(changes)
    if updates:
        await counters.bulk_write(updates, ordered=False)


async def stored_bytes_of(counters: AsyncCollection[Doc], agent_id: str) -> int:
    doc = await counters.find_one({"_id": agent_id})
    return 0 if doc is None else int(doc["bytes"])


async def recount_agent_bytes(sessions: AsyncCollection[Doc], counters: AsyncCollection[Doc]) -> None:
    """Every agent's counter from its sessions' stored bytes."""
    pipeline: list[Doc] = [{"$group": {"_id": "$agent_id", "bytes": {"$sum": "$stored_bytes"}}}]
    found = await (await sessions.aggregate(pipeline)).to_list(None)
    totals = {str(doc["_id"]): int(doc["bytes"]) for doc in found}
    updates = [UpdateOne({"_id": agent}, {"$set": {"bytes": total}}, upsert=True) for agent, total in totals.items()]
    if updates:
        await counters.bulk_write(updates, ordered=False)
    await counters.delete_many({"_id": {"$nin": list(totals)}})
