"""MongoDB store over pymongo's native async API.

Every write is one atomic single-document operation. An append is two of them (insert the entry,
then a guarded update of the session); a writer that dies in between leaves the session behind
its transcript, and the next writer rolls it forward from the stored entries.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import (
    DuplicateKeyError,
)

from schemas import AgentSettings, ArchiveReason, DeliveryContext, SessionEntry, SessionStatus
from worker.engine.delivery import merge_delivery
from worker.engine.tokens import TokenCount
from worker.errors import StoreConflict
from worker.stores.base import (
    DuplicateEvent,
    RecordedOutcome,
    SessionQuery,
    SessionUpdate,
    StoredEntry,
    ViewChange,
)
from worker.stores.mongo_base import ensure_one_active_per_slot, unavailable
from worker.stores.mongo_bytes import count_bytes
from worker.stores.mongo_docs import (
    Doc,
    delivery_fields,
    entry_doc,
    entry_from_doc,
    model_fields_of,
    plain,
    session_from_doc,
    to_doc,
    utc,
)
from worker.stores.mongo_maintenance import MongoMaintenance
from worker.stores.mongo_migrations import migrate_agent_bytes, migrate_event_keys, migrate_stored_bytes


class MongoStore(MongoMaintenance):
    @classmethod
    def from_url(cls, url: str, database: str) -> MongoStore:
        return cls(AsyncMongoClient(url, tz_aware=True), database)

    @unavailable
    async def ensure_schema(self) -> None:
        up, down = ASCENDING, DESCENDING
        newest = [("last_activity_at", down), ("_id", down)]
        indexes: list[tuple[AsyncCollection[Doc], list[tuple[str, int]], bool]] = [
            (self._sessions, [("agent_id", up), ("key", up), ("generation", up)], True),
            (self._sessions, [("agent_id", up), ("key", up), ("status", up)], False),
            (self._sessions, [("agent_id", up), ("status", up), *newest], False),
            (self._sessions, [("agent_id", up), *newest], False),
            (self._sessions, [("agent_id", up), ("created_at", up), ("_id", up)], False),
            (self._sessions, [("created_at", up), ("_id", up)], False),
            (self._sessions, newest, False),
            (self._sessions, [("archived_by", up)], False),  # a retry finds what its event archived
            (self._entries, [("session_id", up), ("seq", up)], True),
            (self._entries, [("event_id", up)], True),
            (self._checkpoints, [("session_id", up), ("created_at", up)], False),
            (self._entries, [("session_id", up), ("important", up), ("seq", up)], False),
            (self._entries, [("session_id", up), ("role", up), ("seq", up)], False),
            (self._entries, [("key_id", up)], False),
            (self._summaries, [("session_id", up), ("to_seq", up)], False),
            (self._outcomes, [("at", up)], False),
        ]
        for collection, keys, unique in indexes:
            await collection.create_index(keys, unique=unique)
        await ensure_one_active_per_slot(self._sessions)
        await migrate_event_keys(self._meta, self._sessions, self._entries)
        await migrate_stored_bytes(self._meta, self._sessions, self._entries)
        await migrate_agent_bytes(self._meta, self._sessions, self._counters)

    async def close(self) -> None:
        await self._appends.drain()  # a batch in its commit window is written first
        await self._client.close()

    # Agent settings: one small admin-edited document, so a whole-document replace is fine.

    @unavailable
    async def get_settings(self, agent_id: str) -> AgentSettings | None:
        doc = await self._settings.find_one({"_id": agent_id})
        if doc is None:
            return None
        doc.pop("_id")
        return AgentSettings.model_validate(utc(doc))

    @unavailable
    async def save_settings(self, settings: AgentSettings) -> None:
        doc: Doc = plain(settings.model_dump(mode="python", exclude_unset=True))  # only what was set
        await self._settings.replace_one({"_id": settings.agent_id}, doc, upsert=True)

    # Sessions

    @unavailable
    async def find_active(self, agent_id: str, key: str) -> SessionEntry | None:
        where = {"agent_id": agent_id, "key": key, "status": "active"}
        return session_from_doc(await self._sessions.find_one(where, sort=[("generation", DESCENDING)]))

    @unavailable
    async def last_generation(self, agent_id: str, key: str) -> int:
        doc = await self._sessions.find_one(
            {"agent_id": agent_id, "key": key}, {"generation": 1}, sort=[("generation", DESCENDING)]
        )
        return 0 if doc is None else int(doc["generation"])

    @unavailable
    async def insert_session(self, session: SessionEntry) -> bool:
        try:
            await self._sessions.insert_one(to_doc(session))
        except DuplicateKeyError:
            return False
        await count_bytes(self._counters, [(session.agent_id, session.stored_bytes)])  # 0: nothing to write
        return True

    @unavailable
    async def get_session(self, session_id: str) -> SessionEntry | None:
        return session_from_doc(await self._sessions.find_one({"_id": session_id}))

    @unavailable
    async def archive_session(
        self, session_id: str, reason: ArchiveReason, at: datetime, by: str | None = None
    ) -> bool:
        archived = {"status": "archived", "archived_reason": reason, "archived_at": at, "archived_by": by}
        result = await self._sessions.update_one(
            {"_id": session_id, "status": "active"},
            {
                "$set": {**archived, "updated_at": at},
                "$inc": {"version": 1},
            },
        )
        return result.modified_count == 1

    @unavailable
    async def archived_by(self, event_key: str) -> list[SessionEntry]:
        cursor = self._sessions.find({"archived_by": event_key, "status": "archived"})
        return [SessionEntry.model_validate(model_fields_of(doc)) async for doc in cursor]

    @unavailable
    async def reactivate_session(
        self, session_id: str, generation: int, at: datetime, opened_by: str | None = None
    ) -> bool:
        opener = {} if opened_by is None else {"opened_by": opened_by}
        try:
            result = await self._sessions.update_one(
                {"_id": session_id, "status": "archived"},
                {
                    "$set": {
                        "status": "active",
                        "generation": generation,
                        "archived_reason": None,
                        "archived_at": None,
                        "archived_by": None,
                        "updated_at": at,
                        **opener,
                    },
                    "$inc": {"version": 1},
                },
            )
        except DuplicateKeyError:  # another session holds (agent, key, generation)
            return False
        return result.matched_count == 1

    @unavailable
    async def update_delivery(self, session_id: str, delivery: DeliveryContext, at: datetime) -> None:
        changes = {**delivery_fields(delivery), "updated_at": at}
        await self._sessions.update_one({"_id": session_id}, {"$set": changes, "$inc": {"version": 1}})

    @unavailable
    async def set_model(self, session_id: str, model: str | None, at: datetime) -> bool:
        changes = {"$set": {"model": model, "updated_at": at}, "$inc": {"version": 1}}
        return (await self._sessions.update_one({"_id": session_id}, changes)).matched_count == 1

    @unavailable
    async def change_view(self, session_id: str, change: ViewChange) -> bool:
        result = await self._sessions.update_one(
            {"_id": session_id, "version": change.expected_version},
            {
                "$set": {
                    "view": [s.model_dump() for s in change.view],
                    "message_count": change.message_count,
                    "updated_at": change.at,
                },
                "$inc": {"version": 1},
            },
        )
        return result.matched_count == 1

    @unavailable
    async def list_sessions(self, query: SessionQuery) -> list[SessionEntry]:
        if query.limit <= 0:  # pymongo treats limit 0 as "no limit"
            return []
        where: Doc = {}
        for name in ("agent_id", "status", "key"):
            if (value := getattr(query, name)) is not None:
                where[name] = value
        if query.active_since is not None:
            where["last_activity_at"] = {"$gte": query.active_since}
        if query.after is not None:
            ts, after_id = query.after
            where["$or"] = [{"last_activity_at": {"$lt": ts}}, {"last_activity_at": ts, "_id": {"$lt": after_id}}]
        cursor = (
            self._sessions.find(where).sort([("last_activity_at", DESCENDING), ("_id", DESCENDING)]).limit(query.limit)
        )
        return [SessionEntry.model_validate(model_fields_of(doc)) async for doc in cursor]

    @unavailable
    async def count_sessions(self, agent_id: str | None, status: SessionStatus | None) -> int:
        where: Doc = {name: value for name, value in (("agent_id", agent_id), ("status", status)) if value}
        return int(await self._sessions.count_documents(where))

    # Transcript

    @unavailable
    async def append_entry(self, entry: StoredEntry, update: SessionUpdate, tokens: TokenCount | None = None) -> bool:
        sid = entry.session_id
        if tokens is not None:  # the async driver has no thread of ours to count on
            entry = replace(entry, token_count=tokens())
        counted = (update.agent_id or await self._agent_of(sid), update.stored_bytes)
        try:
            # Batched with the appends of other sessions that arrive meanwhile (mongo_appends.py).
            applied = await self._appends.append(entry_doc(entry), *_guarded_update(sid, update), counted)
        except DuplicateKeyError as exc:
            # mongomock's error has no `details`, so ask the data which unique index was hit.
            if (stored := await self.find_entry_by_event(entry.event_id)) is not None:
                # A retry after a failure between our two writes lands here: heal the session.
                await self._roll_forward(stored.session_id)
                raise DuplicateEvent(entry.event_id) from exc
            await self._roll_forward(sid)
            raise StoreConflict(f"sequence {entry.seq} of session {sid} was taken by a concurrent writer") from exc
        if applied:
            return update.version is not None
        # The session lags (an earlier writer died between its two writes), another writer rolled
        # it forward through our entry already, or another process changed it (version): our entry
        # is stored, so settle the counters from the entries and let the caller re-read.
        await self._roll_forward(sid)
        if await self._last_seq(sid) >= update.seq or await self._apply(sid, update, check_version=False):
            await count_bytes(self._counters, [counted])  # in its session: counted once, here
            return False
        raise StoreConflict(f"session {sid} moved on while appending sequence {entry.seq}")

    async def _apply(self, session_id: str, update: SessionUpdate, *, check_version: bool = True) -> bool:
        """One guarded atomic update (see _guarded_update)."""
        guard, change = _guarded_update(session_id, update, check_version=check_version)
        result = await self._sessions.update_one(guard, change)
        return result.matched_count == 1

    async def _agent_of(self, session_id: str) -> str:
        doc = await self._sessions.find_one({"_id": session_id}, {"agent_id": 1})
        if doc is None:
            raise StoreConflict(f"session {session_id} does not exist")
        return str(doc["agent_id"])

    async def _last_seq(self, session_id: str) -> int:
        doc = await self._sessions.find_one({"_id": session_id}, {"last_seq": 1})
        return -1 if doc is None else int(doc["last_seq"])

    async def _roll_forward(self, session_id: str) -> None:
        """Apply stored entries the session has not counted yet, each with a guarded update."""
        session = await self._sessions.find_one({"_id": session_id}, {"last_seq": 1, "delivery_context": 1})
        if session is None:
            return
        raw = session.get("delivery_context")
        delivery = None if raw is None else DeliveryContext.model_validate(raw)
        cursor = self._entries.find({"session_id": session_id, "seq": {"$gt": int(session["last_seq"])}}).sort(
            "seq", ASCENDING
        )
        async for doc in cursor:
            entry = entry_from_doc(doc)
            fresh = None
            if entry.delivery is not None:
                delivery = fresh = merge_delivery(delivery, entry.delivery)
            update = SessionUpdate(
                seq=entry.seq,
                at=entry.timestamp,
                delivery=fresh,
                input_tokens=entry.input_tokens,
                output_tokens=entry.output_tokens,
                stored_bytes=len(entry.payload),
            )
            if not await self._apply(session_id, update):
                return  # another writer is rolling forward too; it finishes the job

    @unavailable
    async def find_entry_by_event(self, event_id: str) -> StoredEntry | None:
        doc = await self._entries.find_one({"event_id": event_id})
        return None if doc is None else entry_from_doc(doc)

    @unavailable
    async def read_entries(self, session_id: str, start: int, end: int, limit: int) -> list[StoredEntry]:
        if limit <= 0:
            return []
        cursor = (
            self._entries.find({"session_id": session_id, "seq": {"$gte": start, "$lte": end}})
            .sort("seq", DESCENDING)
            .limit(limit)
        )
        return [entry_from_doc(doc) async for doc in cursor]

    @unavailable
    async def set_important(self, session_id: str, seq: int, important: bool) -> bool:
        result = await self._entries.update_one(
            {"session_id": session_id, "seq": seq}, {"$set": {"important": important}}
        )
        return result.matched_count == 1

    # Processed events ------------------------------------------------------------------------

    @unavailable
    async def get_outcome(self, key: str) -> RecordedOutcome | None:
        doc = await self._outcomes.find_one({"_id": key})
        return None if doc is None else RecordedOutcome(str(doc["doc"]), doc.get("fp"))

    @unavailable
    async def save_outcome(self, key: str, outcome: str, at: datetime, fingerprint: str | None) -> None:
        # $setOnInsert keeps the first outcome: a replay never overwrites what was published.
        record = {"doc": outcome, "at": at, "fp": fingerprint}
        await self._outcomes.update_one({"_id": key}, {"$setOnInsert": record}, upsert=True)

    @unavailable
    async def prune_outcomes(self, before: datetime) -> int:
        result = await self._outcomes.delete_many({"at": {"$lt": before}})
        return int(result.deleted_count)


def _guarded_update(session_id: str, update: SessionUpdate, *, check_version: bool = True) -> tuple[Doc, Doc]:
    """The filter and update of one appended entry: it matches only if the session is exactly one
    entry behind (and, when asked, still at the version the caller saw)."""
    changes: Doc = {"last_seq": update.seq, "updated_at": update.at, "last_activity_at": update.at}
    if update.delivery is not None:
        changes.update(delivery_fields(update.delivery))
    guard: Doc = {"_id": session_id, "last_seq": update.seq - 1}
    if check_version and update.version is not None:
        guard["version"] = update.version
    increments = {
        "message_count": 1,
        "input_tokens": update.input_tokens,
        "output_tokens": update.output_tokens,
        "stored_bytes": update.stored_bytes,
        "version": 1,
    }
    return guard, {"$set": changes, "$inc": increments}
