"""Checkpoints, summaries and key-rotation scans of the MongoDB store (mixed into MongoStore)."""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from schemas import Checkpoint, Summary
from worker.stores.base import StoredEntry
from worker.stores.mongo_attempts import MongoAttempts
from worker.stores.mongo_base import insert_new, unavailable
from worker.stores.mongo_bytes import count_bytes
from worker.stores.mongo_docs import Doc, entry_from_doc, model_fields_of, to_doc


class MongoRecords(MongoAttempts):
    # Checkpoints and summaries

    @unavailable
    async def insert_checkpoint(self, checkpoint: Checkpoint) -> None:
        await insert_new(self._checkpoints, to_doc(checkpoint), f"checkpoint {checkpoint.id}")

    @unavailable
    async def get_checkpoint(self, checkpoint_id: str) -> Checkpoint | None:
        doc = await self._checkpoints.find_one({"_id": checkpoint_id})
        return None if doc is None else Checkpoint.model_validate(model_fields_of(doc))

    @unavailable
    async def list_checkpoints(self, session_ids: list[str]) -> list[Checkpoint]:
        if not session_ids:
            return []
        cursor = self._checkpoints.find({"session_id": {"$in": list(session_ids)}}).sort(
            [("created_at", ASCENDING), ("_id", ASCENDING)]
        )
        return [Checkpoint.model_validate(model_fields_of(doc)) async for doc in cursor]

    @unavailable
    async def delete_checkpoint(self, checkpoint_id: str) -> bool:
        result = await self._checkpoints.delete_one({"_id": checkpoint_id})
        return result.deleted_count == 1

    @unavailable
    async def insert_summary(self, summary: Summary) -> None:
        # Summary ids derive from their event: a replayed event inserts nothing, as in SQLite.
        try:
            await self._summaries.insert_one(to_doc(summary))
        except DuplicateKeyError:
            return

    @unavailable
    async def list_summaries(self, session_id: str) -> list[Summary]:
        cursor = self._summaries.find({"session_id": session_id}).sort([("from_seq", ASCENDING), ("_id", ASCENDING)])
        return [Summary.model_validate(model_fields_of(doc)) async for doc in cursor]

    @unavailable
    async def summaries_before(self, session_id: str, before_seq: int, limit: int) -> list[Summary]:
        if limit <= 0:
            return []
        where: Doc = {"session_id": session_id, "to_seq": {"$lt": before_seq}}
        cursor = self._summaries.find(where).sort("to_seq", DESCENDING).limit(limit)
        return [Summary.model_validate(model_fields_of(doc)) async for doc in cursor]

    @unavailable
    async def read_pinned(self, session_id: str, start: int, end: int, limit: int) -> list[StoredEntry]:
        if limit <= 0:
            return []
        where: Doc = {
            "session_id": session_id,
            "seq": {"$gte": start, "$lte": end},
            "$or": [{"important": True}, {"role": "system"}],
        }
        cursor = self._entries.find(where).sort("seq", DESCENDING).limit(limit)
        return [entry_from_doc(doc) async for doc in cursor]

    # Key rotation ----------------------------------------------------------------------------

    @unavailable
    async def count_unsealed(self, key_id: str) -> int:
        return int(await self._entries.count_documents({"key_id": {"$ne": key_id}}))

    @unavailable
    async def scan_unsealed(self, key_id: str, after: str | None, limit: int) -> tuple[list[StoredEntry], str | None]:
        where: Doc = {"key_id": {"$ne": key_id}}
        if after is not None:
            where["_id"] = {"$gt": after}
        docs = await self._entries.find(where).sort("_id", ASCENDING).limit(limit).to_list(None)
        return [entry_from_doc(doc) for doc in docs], (str(docs[-1]["_id"]) if docs else after)

    @unavailable
    async def reseal_entry(self, entry: StoredEntry, payload: bytes, key_id: str) -> bool:
        before = await self._entries.find_one_and_update(
            {"session_id": entry.session_id, "seq": entry.seq, "key_id": entry.key_id},
            {"$set": {"payload": payload, "key_id": key_id}},
            {"payload": 1},
            return_document=ReturnDocument.BEFORE,
        )
        if before is None:
            return False
        if len(payload) != len(before["payload"]):  # a sealed payload is longer: both counters follow
            await self._shift_stored_bytes(entry.session_id, len(payload) - len(before["payload"]))
        return True

    async def _shift_stored_bytes(self, session_id: str, delta: int) -> None:
        """Add `delta` to the session's stored bytes, then to its agent's counter."""
        session = await self._sessions.find_one_and_update(
            {"_id": session_id}, {"$inc": {"stored_bytes": delta}}, {"agent_id": 1}
        )
        if session is not None:
            await count_bytes(self._counters, [(str(session["agent_id"]), delta)])

    @unavailable
    async def scan_checkpoints(self, after: str | None, limit: int) -> list[Checkpoint]:
        where: Doc = {} if after is None else {"_id": {"$gt": after}}
        cursor = self._checkpoints.find(where).sort("_id", ASCENDING).limit(limit)
        return [Checkpoint.model_validate(model_fields_of(doc)) async for doc in cursor]

    @unavailable
    async def replace_checkpoint_text(
        self, checkpoint_id: str, name: str, description: str | None, sealed_with: str | None
    ) -> None:
        texts = {"name": name, "description": description, "sealed_with": sealed_with}
        await self._checkpoints.update_one({"_id": checkpoint_id}, {"$set": texts})

    @unavailable
    async def scan_summaries(self, after: str | None, limit: int) -> list[Summary]:
        where: Doc = {} if after is None else {"_id": {"$gt": after}}
        cursor = self._summaries.find(where).sort("_id", ASCENDING).limit(limit)
        return [Summary.model_validate(model_fields_of(doc)) async for doc in cursor]

    @unavailable
    async def replace_summary_content(self, summary_id: str, content: str, sealed_with: str | None) -> None:
        await self._summaries.update_one(
            {"_id": summary_id}, {"$set": {"content": content, "sealed_with": sealed_with}}
        )

    async def reclaim(self) -> None:
        """Nothing to do from a client: WiredTiger reuses freed space; operators run `compact`."""
