"""Changing an agent's scope: the settings change, and the active sessions it leaves without a slot archived."""

from __future__ import annotations

from dataclasses import dataclass

from schemas import AgentSettings, SessionEntry
from worker.engine.clock import Clock
from worker.engine.scope import key_fits
from worker.sessions.agents import AgentDirectory
from worker.sessions.pages import every_session
from worker.stores.base import SessionQuery, SessionRecords


@dataclass(frozen=True, slots=True)
class ScopeChange:
    settings: AgentSettings
    archived: tuple[SessionEntry, ...]  # the active sessions the new scope has no slot for


class ScopeChanger:
    def __init__(self, agents: AgentDirectory, store: SessionRecords, clock: Clock) -> None:
        self._agents = agents
        self._store = store
        self._clock = clock

    async def change(self, agent_id: str, scope: str, key: str | None) -> ScopeChange:
        """Set the scope, then archive (reason scope-change) each active session whose slot the new
        scope no longer has, so none is left active and unreachable. A retry of the event `key`
        reports the sessions an attempt of it archived before a fault cut it short, too."""
        settings = await self._agents.set_scope(agent_id, scope)
        archived = await self._archived_earlier(settings.agent_id, key)
        async for session in every_session(self._store, SessionQuery(agent_id=settings.agent_id, status="active")):
            misfit = not key_fits(settings.scope, session.key)
            if misfit and await self._store.archive_session(session.id, "scope-change", self._clock(), by=key):
                archived.append(session)
        return ScopeChange(settings, tuple(archived))

    async def _archived_earlier(self, agent_id: str, key: str | None) -> list[SessionEntry]:
        if key is None:
            return []
        before = await self._store.archived_by(key)
        return [s for s in before if s.agent_id == agent_id and s.archived_reason == "scope-change"]
