"""Changing what a session shows (its view), for a clear or a checkpoint's restore: one guarded write."""

from __future__ import annotations

from collections.abc import Callable

from schemas import Segment, SessionEntry
from worker.engine.clock import Clock
from worker.engine.keyed_lock import KeyedLock
from worker.errors import SessionNotFound
from worker.stores.base import SessionRecords, ViewChange

# The new view of a session and the message count it shows, from the session as it is now.
ViewOf = Callable[[SessionEntry], tuple[tuple[Segment, ...], int]]


class SessionViews:
    def __init__(self, store: SessionRecords, clock: Clock, locks: KeyedLock) -> None:
        self._store = store
        self._clock = clock
        self._locks = locks

    async def change(self, session_id: str, view_of: ViewOf) -> SessionEntry | None:
        """The session showing `view_of(session)`, under its lock and compare-and-set on its
        version; None when a writer in another process changed it first (the caller says so)."""
        async with self._locks.hold(session_id):
            session = await self._store.get_session(session_id)
            if session is None:
                raise SessionNotFound(f"no session {session_id}")
            view, count = view_of(session)
            change = ViewChange(view=view, message_count=count, at=self._clock(), expected_version=session.version)
            if not await self._store.change_view(session.id, change):
                return None
            return session.model_copy(update={"view": view, "message_count": count, "updated_at": change.at})
