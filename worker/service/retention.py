"""Applying a scheduler's retention event: re-checked against the store, then the session deleted.

What is deleted is noted first (worker/sessions/deletions.py): a retry after a fault that struck
between the delete and the outcome's record still publishes the deletion's notice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.events import RetentionDue
from worker.commands.handlers import plural
from worker.engine.clock import Clock
from worker.engine.idempotency import Identity
from worker.engine.outcome import Outcome
from worker.service.announcements import Announcer
from worker.service.control import ignored, kept_minimum, over_budget, past_rule, rule_limit
from worker.sessions.deletions import DeletionNotes
from worker.sessions.manager import SessionManager


@dataclass(frozen=True, slots=True)
class Deleted:
    """A session deleted by retention, as its notice names it."""

    id: str
    agent_id: str


class RetentionDeletes:
    def __init__(self, manager: SessionManager, clock: Clock, say: Announcer) -> None:
        self._manager = manager
        self._store = manager.store
        self._clock = clock
        self._say = say
        self._deletions = DeletionNotes(manager.store, clock)

    async def apply(self, event: RetentionDue, identity: Identity) -> Outcome:
        session = await self._store.get_session(event.session_id)
        if session is None:
            return await self._deleted_before(identity, event)
        if session.agent_id != event.agent_id:
            return ignored(event, f"the session belongs to agent {session.agent_id!r}")
        retention = (await self._manager.get_settings(session.agent_id)).retention
        if retention.mode == "off":
            return ignored(event, "retention is off for the agent")
        if not past_rule(session, event.rule, retention, self._clock()):
            return ignored(event, f"the session is not past {event.rule} ({rule_limit(event.rule, retention)})")
        if event.rule == "max_store_bytes" and not await over_budget(self._store, session, retention):
            return ignored(event, "the agent is within its store budget")
        if await kept_minimum(self._store, session, retention.keep_minimum):
            return ignored(event, f"keep_minimum ({retention.keep_minimum}) protects the session")
        if event.mode == "warn" or retention.mode == "warn":
            text = f"session {session.id} is past retention ({event.rule}) and would be deleted"
            return self._say.notice(identity, session, "retention-warning", text, None)
        entries = (await self._store.count_records([session.id])).entries
        what: dict[str, Any] = {"session": session.id, "agent": session.agent_id, "entries": entries}  # ids, a count
        await self._deletions.note(identity.key, what)
        noted = await self._deletions.noted(identity.key) or what  # an earlier attempt's, if it noted first
        await self._store.delete_sessions([session.id])
        return self._retention_deleted(
            identity, Deleted(session.id, session.agent_id), event.rule, int(noted["entries"])
        )

    async def _deleted_before(self, identity: Identity, event: RetentionDue) -> Outcome:
        """A session gone already: deleted by this event's attempt that a fault cut short (said
        now), or by a second scheduler or a replay (nothing to say)."""
        noted = await self._deletions.noted(identity.key)
        if noted is None:
            return Outcome()
        deleted = Deleted(str(noted["session"]), str(noted["agent"]))
        return self._retention_deleted(identity, deleted, event.rule, int(noted["entries"]))

    def _retention_deleted(self, identity: Identity, session: Deleted, rule: str, entries: int) -> Outcome:
        text = f"session {session.id} deleted by retention ({rule}): {plural(entries, 'entry', 'entries')}"
        return self._say.notice(identity, session, "retention-deleted", text, None)
