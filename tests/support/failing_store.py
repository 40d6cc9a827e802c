"""A store that fails one chosen call once, as a full disk or a lost connection would."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple

from schemas import ArchiveReason, SessionEntry
from tests.support.fakes import RecordingPublisher, handler_for
from worker import create_session_manager
from worker.amqp.consumer import EventHandler
from worker.engine.clock import ManualClock
from worker.engine.tokens import CharRatioCounter, TokenCount
from worker.errors import StoreUnavailable
from worker.sessions.manager import SessionManager
from worker.stores.base import DeletedCounts, SessionStore, SessionUpdate, StoredEntry
from worker.stores.delegating import DelegatingStore


class FailingOnce(DelegatingStore):
    """Fails the next call of the method named by `armed` with StoreUnavailable, then disarms;
    `tripped` says whether it did, and `outage` (if set) runs as it fails: time passing, say."""

    armed: str | None = None
    tripped: bool = False
    outage: Callable[[], object] | None = None

    def _trip(self, method: str) -> None:
        if self.armed == method:
            self.armed = None
            self.tripped = True
            if self.outage is not None:
                self.outage()
            raise StoreUnavailable(f"{method}: disk full")

    async def insert_session(self, session: SessionEntry) -> bool:
        self._trip("insert_session")
        return await self.inner.insert_session(session)

    async def archive_session(
        self, session_id: str, reason: ArchiveReason, at: datetime, by: str | None = None
    ) -> bool:
        self._trip("archive_session")
        return await self.inner.archive_session(session_id, reason, at, by)

    async def reactivate_session(
        self, session_id: str, generation: int, at: datetime, opened_by: str | None = None
    ) -> bool:
        self._trip("reactivate_session")
        return await self.inner.reactivate_session(session_id, generation, at, opened_by)

    async def append_entry(self, entry: StoredEntry, update: SessionUpdate, tokens: TokenCount | None = None) -> bool:
        self._trip("append_entry")
        return await self.inner.append_entry(entry, update, tokens)

    async def delete_checkpoint(self, checkpoint_id: str) -> bool:
        self._trip("delete_checkpoint")
        return await self.inner.delete_checkpoint(checkpoint_id)

    async def delete_sessions(self, session_ids: list[str]) -> DeletedCounts:
        self._trip("delete_sessions")
        return await self.inner.delete_sessions(session_ids)

    async def set_important(self, session_id: str, seq: int, important: bool) -> bool:
        self._trip("set_important")
        return await self.inner.set_important(session_id, seq, important)

    async def save_outcome(self, key: str, outcome: str, at: datetime, fingerprint: str | None) -> None:
        self._trip("save_outcome")
        await self.inner.save_outcome(key, outcome, at, fingerprint)


class FaultRig(NamedTuple):
    """A manager over a FailingOnce store, and the worker's handler publishing into a recorder."""

    failing: FailingOnce
    manager: SessionManager
    publisher: RecordingPublisher
    handler: EventHandler


def fault_rig(store: SessionStore, clock: ManualClock, **options: Any) -> FaultRig:
    """`options` are the manager's (create_session_manager's keywords)."""
    failing = FailingOnce(store)
    manager = create_session_manager(store=failing, clock=clock, token_counter=CharRatioCounter(), **options)
    publisher = RecordingPublisher()
    return FaultRig(failing, manager, publisher, handler_for(manager, publisher, clock=clock))
