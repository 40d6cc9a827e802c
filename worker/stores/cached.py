"""A write-through cache of sessions in front of any store.

A worker owns its shards, so it is the only writer of most sessions it touches; keeping their
documents in memory takes the reads off the hot path. Every write in this process goes through
here and updates the cache. Writes from other processes are caught by the stores' guarded
updates (an append checks last_seq and status): a guard that fails drops the cached copy, and the
caller's retry reads the fresh one. Only session documents are cached; every other call passes
through untouched (DelegatingStore).
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime
from typing import Any

from schemas import ArchiveReason, DeliveryContext, SessionEntry
from schemas.settings import SESSION_CACHE_SIZE
from worker.engine.tokens import TokenCount
from worker.errors import StoreConflict
from worker.stores.base import DeletedCounts, SessionStore, SessionUpdate, StoredEntry, ViewChange
from worker.stores.delegating import DelegatingStore


class CachedStore(DelegatingStore):
    def __init__(self, inner: SessionStore, *, capacity: int = SESSION_CACHE_SIZE) -> None:
        super().__init__(inner)
        self._capacity = capacity
        self._sessions: OrderedDict[str, SessionEntry] = OrderedDict()
        self._active: dict[tuple[str, str], str] = {}

    # Cache bookkeeping ------------------------------------------------------------------------
    def _put(self, session: SessionEntry) -> SessionEntry:
        self._sessions[session.id] = session
        self._sessions.move_to_end(session.id)
        slot = (session.agent_id, session.key)
        if session.status == "active":
            self._active[slot] = session.id
        elif self._active.get(slot) == session.id:
            del self._active[slot]
        while len(self._sessions) > self._capacity:
            _, evicted = self._sessions.popitem(last=False)
            if self._active.get((evicted.agent_id, evicted.key)) == evicted.id:
                del self._active[(evicted.agent_id, evicted.key)]
        return session

    def forget(self, session_id: str) -> None:
        session = self._sessions.pop(session_id, None)
        if session is not None and self._active.get((session.agent_id, session.key)) == session_id:
            del self._active[(session.agent_id, session.key)]

    # Reads ----------------------------------------------------------------------------------
    async def get_session(self, session_id: str) -> SessionEntry | None:
        """Always fresh (what callers show or decide on), and it refreshes the cached copy."""
        found = await self.inner.get_session(session_id)
        if found is None:
            self.forget(session_id)
            return None
        return self._put(found)

    async def cached_session(self, session_id: str) -> SessionEntry | None:
        """The hot path's read: the cached copy if any. Appends are guarded by its version."""
        cached = self._sessions.get(session_id)
        return cached if cached is not None else await self.get_session(session_id)

    async def find_active(self, agent_id: str, key: str) -> SessionEntry | None:
        """Cached: a stale answer is caught by the version guard of the append that follows."""
        session_id = self._active.get((agent_id, key))
        if session_id is not None and session_id in self._sessions:
            return self._sessions[session_id]
        found = await self.inner.find_active(agent_id, key)
        return None if found is None else self._put(found)

    # Writes that keep the cache true ----------------------------------------------------------
    async def insert_session(self, session: SessionEntry) -> bool:
        inserted = await self.inner.insert_session(session)
        if inserted:
            self._put(session)
        return inserted

    async def archive_session(
        self, session_id: str, reason: ArchiveReason, at: datetime, by: str | None = None
    ) -> bool:
        archived = await self.inner.archive_session(session_id, reason, at, by)
        self.forget(session_id)  # archived by us or by someone else: either way re-read next time
        return archived

    async def reactivate_session(
        self, session_id: str, generation: int, at: datetime, opened_by: str | None = None
    ) -> bool:
        reactivated = await self.inner.reactivate_session(session_id, generation, at, opened_by)
        self.forget(session_id)
        return reactivated

    async def update_delivery(self, session_id: str, delivery: DeliveryContext, at: datetime) -> None:
        await self.inner.update_delivery(session_id, delivery, at)
        self.forget(session_id)  # unguarded write: the version it lands on is not known here

    async def set_model(self, session_id: str, model: str | None, at: datetime) -> bool:
        changed = await self.inner.set_model(session_id, model, at)
        self.forget(session_id)
        return changed

    async def change_view(self, session_id: str, change: ViewChange) -> bool:
        changed = await self.inner.change_view(session_id, change)
        cached = self._sessions.get(session_id)
        if changed and cached is not None and cached.version == change.expected_version:
            self._put(
                cached.model_copy(
                    update={
                        "view": change.view,
                        "message_count": change.message_count,
                        "updated_at": change.at,
                        "version": change.expected_version + 1,
                    }
                )
            )
        else:
            self.forget(session_id)
        return changed

    async def append_entry(self, entry: StoredEntry, update: SessionUpdate, tokens: TokenCount | None = None) -> bool:
        try:
            exact = await self.inner.append_entry(entry, update, tokens)
        except StoreConflict:
            self.forget(entry.session_id)
            raise
        cached = self._sessions.get(entry.session_id)
        if not exact or cached is None or cached.version != update.version:
            self.forget(entry.session_id)
            return exact
        fields: dict[str, Any] = {
            "version": cached.version + 1,
            "last_seq": update.seq,
            "updated_at": update.at,
            "last_activity_at": update.at,
            "message_count": cached.message_count + 1,
            "input_tokens": cached.input_tokens + update.input_tokens,
            "output_tokens": cached.output_tokens + update.output_tokens,
            "stored_bytes": cached.stored_bytes + update.stored_bytes,
        }
        if update.delivery is not None:
            fields.update(_delivery_fields(update.delivery))
        self._put(cached.model_copy(update=fields))
        return True

    async def delete_sessions(self, session_ids: list[str]) -> DeletedCounts:
        for session_id in session_ids:
            self.forget(session_id)
        return await self.inner.delete_sessions(session_ids)


def _delivery_fields(delivery: DeliveryContext) -> dict[str, Any]:
    return {
        "delivery_context": delivery,
        "last_channel": delivery.channel,
        "last_to": delivery.to,
        "last_account_id": delivery.account_id,
        "last_thread_id": delivery.thread_id,
    }
