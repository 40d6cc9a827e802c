"""Scans and deletions of the MongoDB store (mixed into MongoStore), keeping the byte counters true."""

from __future__ import annotations

from pymongo import ASCENDING

from schemas import SessionEntry
from worker.stores.base import DeletedCounts, SessionScan
from worker.stores.mongo_base import unavailable
from worker.stores.mongo_bytes import count_bytes, stored_bytes_of
from worker.stores.mongo_docs import Doc, model_fields_of
from worker.stores.mongo_records import MongoRecords


class MongoMaintenance(MongoRecords):
    @unavailable
    async def scan_sessions(self, scan: SessionScan) -> list[SessionEntry]:
        if scan.limit <= 0:
            return []
        field = "created_at" if scan.field == "created_at" else "last_activity_at"
        where: Doc = {field: {"$lt": scan.before}}
        if scan.agent_id is not None:
            where["agent_id"] = scan.agent_id
        if scan.status is not None:
            where["status"] = scan.status
        if scan.after is not None:  # keyset, oldest first: strictly after (value, id)
            value, after_id = scan.after
            where["$or"] = [{field: {"$gt": value}}, {field: value, "_id": {"$gt": after_id}}]
        cursor = self._sessions.find(where).sort([(field, ASCENDING), ("_id", ASCENDING)]).limit(scan.limit)
        return [SessionEntry.model_validate(model_fields_of(doc)) async for doc in cursor]

    @unavailable
    async def agent_ids(self) -> set[str]:
        with_sessions = await self._sessions.distinct("agent_id")
        with_settings = await self._settings.distinct("_id")
        return {str(agent) for agent in [*with_sessions, *with_settings]}

    @unavailable
    async def sessions_with_checkpoints(self, session_ids: list[str]) -> set[str]:
        if not session_ids:
            return set()
        owned = {"session_id": {"$in": list(session_ids)}}
        return {str(sid) for sid in await self._checkpoints.distinct("session_id", owned)}

    @unavailable
    async def delete_sessions(self, session_ids: list[str]) -> DeletedCounts:
        if not session_ids:
            return DeletedCounts()
        owned: Doc = {"session_id": {"$in": list(session_ids)}}
        # Children first, sessions last: if we die midway, the session is still there to be
        # found and deleted again, instead of leaving orphaned entries nobody can reach.
        entries = await self._entries.delete_many(owned)
        checkpoints = await self._checkpoints.delete_many(owned)
        summaries = await self._summaries.delete_many(owned)
        # One by one: the deleter that removed a session (and only that one) subtracts its bytes.
        freed: list[tuple[str, int]] = []
        for session_id in session_ids:
            doc = await self._sessions.find_one_and_delete({"_id": session_id}, {"agent_id": 1, "stored_bytes": 1})
            if doc is not None:
                freed.append((str(doc["agent_id"]), -int(doc.get("stored_bytes", 0))))
        await count_bytes(self._counters, freed)
        return DeletedCounts(
            sessions=len(freed),
            entries=entries.deleted_count,
            checkpoints=checkpoints.deleted_count,
            summaries=summaries.deleted_count,
        )

    @unavailable
    async def agent_stored_bytes(self, agent_id: str) -> int:
        return await stored_bytes_of(self._counters, agent_id)

    @unavailable
    async def count_records(self, session_ids: list[str]) -> DeletedCounts:
        owned: Doc = {"session_id": {"$in": list(session_ids)}}
        return DeletedCounts(
            sessions=await self._sessions.count_documents({"_id": {"$in": list(session_ids)}}),
            entries=await self._entries.count_documents(owned),
            checkpoints=await self._checkpoints.count_documents(owned),
            summaries=await self._summaries.count_documents(owned),
        )

    @unavailable
    async def entries_after(self, session_id: str, seq: int, *, delete: bool) -> int:
        later: Doc = {"session_id": session_id, "seq": {"$gt": seq}}
        if not delete:
            return int(await self._entries.count_documents(later))
        deleted, size = 0, 0
        async for doc in self._entries.find(later, {"_id": 1}):
            # One by one, so that only the entries this call removed are subtracted.
            removed = await self._entries.find_one_and_delete({"_id": doc["_id"]}, {"payload": 1})
            if removed is not None:
                deleted, size = deleted + 1, size + len(removed["payload"])
        if size:
            await self._shift_stored_bytes(session_id, -size)
        return deleted
