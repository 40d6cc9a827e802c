"""SessionManager: the library's API. The worker is a thin event-driven shell around it."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, Literal, overload

from schemas import (
    AgentSettings,
    ChatType,
    Checkpoint,
    ContextStrategy,
    DeliveryContext,
    Role,
    SessionEntry,
    SessionPage,
    SessionStatus,
    Summary,
    TranscriptEntry,
    Usage,
)
from worker.engine.clock import Clock
from worker.engine.keyed_lock import KeyedLock
from worker.engine.redaction import Findings
from worker.engine.scope import ChatAddress, slot_key
from worker.errors import SessionNotFound
from worker.sessions.agents import AgentDirectory
from worker.sessions.checkpoints import CheckpointBook
from worker.sessions.context import ContextWindow, window_for
from worker.sessions.deletions import DeletionNotes
from worker.sessions.drafts import checked_draft
from worker.sessions.history import ExportFormat, History, HistoryFormat
from worker.sessions.maintenance import CleanupReport, CleanupRequest, cleanup, cleanup_budget
from worker.sessions.model_choice import ModelChoice, check_model
from worker.sessions.opening import opening
from worker.sessions.pages import page_of
from worker.sessions.redacting import Redactions
from worker.sessions.resume import Resumed, Resumer
from worker.sessions.scope_change import ScopeChange, ScopeChanger
from worker.sessions.slots import Resolution, SlotResolver
from worker.sessions.summaries import Summaries
from worker.sessions.transcript import Transcript
from worker.sessions.views import SessionViews
from worker.stores.base import SessionQuery, SessionStore

__all__ = ["ExportFormat", "HistoryFormat", "ScopeChange", "SessionManager"]


class SessionManager:
    def __init__(
        self, store: SessionStore, transcript: Transcript, agents: AgentDirectory, clock: Clock, locks: KeyedLock
    ) -> None:
        self.store = store
        self.transcript = transcript
        self.agents = agents
        self._clock = clock
        self.redactions = Redactions(agents.get, store, transcript)
        self._slots = SlotResolver(store, clock, locks)
        views = SessionViews(store, clock, locks)
        notes = DeletionNotes(store, clock)
        self._checkpoints = CheckpointBook(store, clock, locks, transcript.codec, views=views, notes=notes)
        self._history = History(store, transcript, views)
        self._summaries = Summaries(store, transcript, clock, self.redactions)
        self._resumer = Resumer(store, transcript, clock, locks)
        self._scopes = ScopeChanger(agents, store, clock)
        self._models = ModelChoice(agents, store, clock)
        self._default_agent = "main"
        self._is_open = False
        self._opening = asyncio.Lock()

    @property
    def is_open(self) -> bool:
        return self._is_open

    # Lifecycle ------------------------------------------------------------------------------
    async def open(self) -> SessionManager:
        """Create the store's tables or collections and indexes (idempotent)."""
        async with self._opening:
            if not self._is_open:
                await self.store.ensure_schema()
                self._is_open = True
        return self

    async def close(self) -> None:
        self._is_open = False
        await self.store.close()

    async def __aenter__(self) -> SessionManager:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # Sessions -------------------------------------------------------------------------------
    @opening
    async def resolve(self, address: ChatAddress, event_id: str | None = None, *, touch: bool = True) -> Resolution:
        """Like get_or_create_session, but also says whether a reset happened on the way."""
        return await self._slots.resolve(await self.agents.get(address.agent_id), address, event_id, touch=touch)

    @opening
    async def reset_address(
        self, address: ChatAddress, reason: Literal["reset", "new"] = "reset", event_id: str | None = None
    ) -> Resolution:
        """Archive the address's slot session and start a new one; idempotent on `event_id`."""
        settings = await self.agents.get(address.agent_id)
        return await self._slots.reset(settings, address, reason, event_id)

    @opening
    async def resume(self, address: ChatAddress, session_id: str | None = None, *, key: str | None = None) -> Resumed:
        """Undo a reset: make the address's previous session (or `session_id`, any archived
        session of its slot) active again; what arrived since is appended at its end."""
        settings = await self.agents.get(address.agent_id)
        return await self._resumer.resume(settings.agent_id, slot_key(settings, address), session_id, key)

    @opening
    async def resume_session(self, session_id: str, *, key: str | None = None) -> Resumed:
        """Resume an archived session by id, in its own slot."""
        target = await self.get_session(session_id)
        return await self._resumer.resume(target.agent_id, target.key, target.id, key)

    @opening
    async def find_session(self, address: ChatAddress) -> SessionEntry | None:
        """The address's active session if it has one; never creates or resets one."""
        settings = await self.agents.get(address.agent_id)
        return await self.store.find_active(settings.agent_id, slot_key(settings, address))

    @opening
    async def slot_members(self, address: ChatAddress) -> list[SessionEntry]:
        """Every session (active and archived) of the address's slot, newest first; creates none."""
        settings = await self.agents.get(address.agent_id)
        return await self._checkpoints.sessions_of_slot(settings.agent_id, slot_key(settings, address))

    @opening
    async def checkpoints_of(self, sessions: list[SessionEntry]) -> list[Checkpoint]:
        return await self._checkpoints.list_of([session.id for session in sessions])

    def check_model(self, settings: AgentSettings, model: str) -> None:
        """Refuses a model outside the agent's allow-list (an empty list allows any)."""
        check_model(settings, model)

    @opening
    async def set_model(self, session_id: str, model: str | None) -> SessionEntry:
        """Set the session's model override (None: the agent's default), which its turn events carry."""
        await self._models.set(await self.get_session(session_id), model)
        return await self.get_session(session_id)

    @opening
    async def slot_sessions(self, session_id: str) -> list[SessionEntry]:
        """Every session (active and archived) of the session's slot, newest first."""
        return await self._checkpoints.slot_sessions(await self.get_session(session_id))

    @opening
    async def get_or_create_session(
        self,
        *,
        user_id: str | None = None,
        channel_id: str | None = None,
        peer_id: str | None = None,
        agent_id: str | None = None,
        account_id: str | None = None,
        thread_id: str | None = None,
        message_id: str | None = None,
        chat_type: ChatType = "direct",
    ) -> SessionEntry:
        address = ChatAddress(
            agent_id=agent_id or self._default_agent,
            channel=channel_id,
            user_id=user_id,
            peer_id=peer_id,
            account_id=account_id,
            thread_id=thread_id,
            message_id=message_id,
            chat_type=chat_type,
        )
        return (await self.resolve(address)).session

    @opening
    async def reset(
        self,
        *,
        user_id: str | None = None,
        channel_id: str | None = None,
        peer_id: str | None = None,
        agent_id: str | None = None,
        chat_type: ChatType = "direct",
        reason: Literal["reset", "new"] = "reset",
    ) -> SessionEntry:
        """Archive the slot's active session and start a new one in the slot."""
        address = ChatAddress(
            agent_id=agent_id or self._default_agent,
            channel=channel_id,
            user_id=user_id,
            peer_id=peer_id,
            chat_type=chat_type,
        )
        return (await self.reset_address(address, reason)).session

    @opening
    async def get_session(self, session_id: str) -> SessionEntry:
        session = await self.store.get_session(session_id)
        if session is None:
            raise SessionNotFound(f"no session {session_id}")
        return session

    @opening
    async def restore_session(self, session_id: str) -> SessionEntry:
        """Make an archived session the active one of its slot again (the current one is archived)."""
        return await self._slots.restore(await self.get_session(session_id))

    @opening
    async def list_sessions(
        self,
        *,
        agent_id: str | None = None,
        status: SessionStatus | None = None,
        active_within_minutes: int | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> SessionPage:
        since = None if active_within_minutes is None else self._clock() - timedelta(minutes=active_within_minutes)
        query = SessionQuery(agent_id=agent_id, status=status, active_since=since, limit=limit)
        return await page_of(self.store, query, cursor)

    # Messages and history ---------------------------------------------------------------------
    @opening
    async def add_message(
        self,
        session_id: str,
        role: Role = "user",
        content: str | None = None,
        *,
        usage: Usage | dict[str, int] | None = None,
        tool: str | None = None,
        args: dict[str, Any] | None = None,
        result: Any = None,
        important: bool = False,
        event_id: str | None = None,
        delivery: DeliveryContext | None = None,
        allow_archived: bool = False,
    ) -> TranscriptEntry:
        """Append one entry, its secrets redacted first (as the agent's settings say).
        `allow_archived` lets a late agent reply land in a session reset meanwhile."""
        draft = checked_draft(
            role,
            content,
            usage=usage,
            tool=tool,
            args=args,
            result=result,
            important=important,
            event_id=event_id,
            delivery=delivery,
        )
        draft = await self.redactions.session_draft(session_id, draft)
        return await self.transcript.append(session_id, draft, allow_archived=allow_archived)

    @overload
    async def get_history(
        self, session_id: str, *, limit: int = ..., format: Literal["messages"] = ...
    ) -> list[TranscriptEntry]: ...
    @overload
    async def get_history(self, session_id: str, *, limit: int = ..., format: Literal["markdown", "text"]) -> str: ...

    async def get_history(
        self, session_id: str, *, limit: int = 50, format: HistoryFormat = "messages"
    ) -> list[TranscriptEntry] | str:
        await self.open()  # overloaded, so not @opening: opens itself on first use all the same
        return await self._history.newest(await self.get_session(session_id), limit, format)

    @opening
    async def clear_history(self, session_id: str) -> SessionEntry:
        """Hide every entry so far; the session, its counters and checkpoints stay."""
        return await self._history.clear(session_id)

    @opening
    async def mark_important(self, session_id: str, seq: int, important: bool = True) -> None:
        await self._history.mark_important(session_id, seq, important)

    @opening
    async def export(
        self, session_id: str, *, format: ExportFormat = "markdown", include_metadata: bool = False
    ) -> str:
        return await self._history.export(await self.get_session(session_id), format, include_metadata=include_metadata)

    # Checkpoints ------------------------------------------------------------------------------
    @opening
    async def save_checkpoint(
        self, session_id: str, name: str, description: str | None = None, *, checkpoint_id: str | None = None
    ) -> Checkpoint:
        """Save the session's history as it is; the name and description are redacted first."""
        agent_id = (await self.get_session(session_id)).agent_id
        findings = Findings()
        name = await self.redactions.text(agent_id, name, findings)
        description = await self.redactions.optional(agent_id, description, findings)
        return await self._checkpoints.save(session_id, name, description, checkpoint_id)

    @opening
    async def list_checkpoints(self, session_id: str, *, whole_slot: bool = False) -> list[Checkpoint]:
        return await self._checkpoints.list_for(session_id, whole_slot=whole_slot)

    @opening
    async def restore_checkpoint(self, checkpoint_id: str, *, session_id: str | None = None) -> SessionEntry:
        """Bring the checkpoint's session back to its saved history. With `session_id`, only a checkpoint
        of that session's slot; an archived session of the slot becomes the active one again first."""
        within = None if session_id is None else await self.get_session(session_id)
        checkpoint, owner = await self._checkpoints.find(checkpoint_id, within)
        return await self._checkpoints.apply(checkpoint, (await self._slots.restore(owner)).id)

    @opening
    async def delete_checkpoint(
        self, checkpoint_id: str, *, session_id: str | None = None, key: str | None = None
    ) -> None:
        """Delete it; the event `key`'s retry, after a fault cut its delete short, succeeds too."""
        within = None if session_id is None else await self.get_session(session_id)
        await self._checkpoints.delete(checkpoint_id, within, key)

    # Settings and maintenance -----------------------------------------------------------------
    @opening
    async def get_settings(self, agent_id: str | None = None) -> AgentSettings:
        return await self.agents.get(agent_id or self._default_agent)

    @opening
    async def set_scope(self, scope: str, *, agent_id: str | None = None) -> AgentSettings:
        return (await self.change_scope(scope, agent_id=agent_id)).settings

    @opening
    async def change_scope(self, scope: str, *, agent_id: str | None = None, key: str | None = None) -> ScopeChange:
        """Change who shares a session; the active sessions the new scope has no slot for are archived
        (the chat's next message opens its session under the new scope). Idempotent on `key`."""
        return await self._scopes.change(agent_id or self._default_agent, scope, key)

    @opening
    async def set_reset_time(
        self, daily_at: str, *, time_zone: str | None = None, agent_id: str | None = None
    ) -> AgentSettings:
        return await self.agents.set_reset_time(agent_id or self._default_agent, daily_at, time_zone)

    @opening
    async def set_idle_reset(self, minutes: int, *, agent_id: str | None = None) -> AgentSettings:
        return await self.agents.set_idle_reset(agent_id or self._default_agent, minutes)

    @opening
    async def set_redaction(
        self, *, enabled: bool | None = None, patterns: list[dict[str, str]] | None = None, agent_id: str | None = None
    ) -> AgentSettings:
        """Switch the agent's redaction on or off, or replace its own patterns ({kind, pattern} each)."""
        return await self.agents.set_redaction(agent_id or self._default_agent, enabled, patterns)

    @opening
    async def cleanup(
        self,
        *,
        older_than: str = "30d",
        keep_checkpoints: bool = True,
        agent_id: str | None = None,
        dry_run: bool = False,
        include_active: bool = False,
    ) -> CleanupReport:
        """Delete sessions inactive for longer than `older_than` (archived ones unless
        `include_active`); `keep_checkpoints` keeps checkpoints and the entries they need."""
        request = CleanupRequest(older_than, keep_checkpoints, agent_id, dry_run, include_active)
        return await cleanup(self.store, self._clock, request)

    @opening
    async def cleanup_budget(self, *, agent_id: str | None = None, dry_run: bool = False) -> CleanupReport:
        """Bring an agent over its store budget (retention.max_store_bytes) back under its
        high-water mark now: the longest-inactive sessions go, never below keep_minimum."""
        settings = await self.get_settings(agent_id)
        return await cleanup_budget(self.store, self._clock, settings.agent_id, settings.retention, dry_run=dry_run)

    # Context windows --------------------------------------------------------------------------
    @opening
    async def add_summary(
        self, session_id: str, from_seq: int, to_seq: int, content: str, *, summary_id: str | None = None
    ) -> Summary:
        """Store a summary of entries from_seq..to_seq, its secrets redacted first (`summarize` uses it)."""
        return await self._summaries.add(await self.get_session(session_id), (from_seq, to_seq), content, summary_id)

    @opening
    async def get_context_history(
        self, session_id: str, *, max_tokens: int | None = None, strategy: ContextStrategy | None = None
    ) -> ContextWindow:
        """The newest history that fits `max_tokens` under `strategy` (defaults: the agent's settings)."""
        session = await self.get_session(session_id)
        defaults = (await self.get_settings(session.agent_id)).context
        return await window_for(self.store, self.transcript, session, defaults, max_tokens, strategy)
