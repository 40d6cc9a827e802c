"""SessionManager: the library's API. The worker is a thin event-driven shell around it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
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
from worker.engine.render import as_markdown, as_text, export_json, export_jsonl, export_markdown
from worker.engine.scope import ChatAddress, key_fits, slot_key
from worker.engine.view import cleared_view
from worker.errors import CheckpointNotFound, InvalidArgument, SessionNotFound
from worker.sessions.agents import AgentDirectory
from worker.sessions.checkpoints import CheckpointBook
from worker.sessions.context import ContextWindow, build_window
from worker.sessions.deletions import DeletionNotes
from worker.sessions.drafts import checked_draft
from worker.sessions.maintenance import CleanupReport, CleanupRequest, cleanup, cleanup_budget
from worker.sessions.opening import opening
from worker.sessions.pages import every_session, page_of
from worker.sessions.redacting import Redactions
from worker.sessions.resume import Resumed, Resumer
from worker.sessions.slots import Resolution, SlotResolver
from worker.sessions.summaries import check_summary, store_summary
from worker.sessions.transcript import Transcript
from worker.stores.base import SessionQuery, SessionStore, ViewChange

HistoryFormat = Literal["messages", "markdown", "text"]


@dataclass(frozen=True, slots=True)
class ScopeChange:
    settings: AgentSettings
    archived: tuple[SessionEntry, ...]  # the active sessions the new scope has no slot for


ExportFormat = Literal["markdown", "json", "jsonl"]


class SessionManager:
    def __init__(
        self,
        store: SessionStore,
        transcript: Transcript,
        agents: AgentDirectory,
        clock: Clock,
        locks: KeyedLock,
    ) -> None:
        self.store = store
        self.transcript = transcript
        self.agents = agents
        self._clock = clock
        self._slots = SlotResolver(store, clock, locks)
        self._checkpoints = CheckpointBook(store, clock, locks, transcript.codec)
        self._resumer = Resumer(store, transcript, clock, locks)
        self._deletions = DeletionNotes(store, clock)
        self._locks = locks
        self._default_agent = "main"
        self.redactions = Redactions(agents.get, store, transcript)
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
        if not model.strip() or len(model) > 200:
            raise InvalidArgument("a model name is 1 to 200 characters")
        if settings.allowed_models and model not in settings.allowed_models:
            allowed = ", ".join(settings.allowed_models)
            raise InvalidArgument(f"model {model!r} is not available here; choose one of: {allowed}")

    @opening
    async def set_model(self, session_id: str, model: str | None) -> SessionEntry:
        """Set the session's model override (None: back to the agent's default); every turn event
        of the session then carries it, so the agent runtime answers with that model."""
        session = await self.get_session(session_id)
        if model is not None:
            self.check_model(await self.agents.get(session.agent_id), model.strip())
            model = model.strip()
        if not await self.store.set_model(session.id, model, self._clock()):
            raise SessionNotFound(f"no session {session_id}")
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
        target = await self.get_session(session_id)
        if target.status == "active":
            return target
        await self._slots.reactivate(target)
        return await self.get_session(session_id)

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
        session = await self.transcript.current_session(session_id)  # the cached copy: no read
        if session is None:
            raise SessionNotFound(f"no session {session_id}")
        draft = await self.redactions.draft(session.agent_id, draft, Findings())
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
        entries = await self.transcript.newest(await self.get_session(session_id), limit)
        if format == "messages":
            return entries
        if format == "markdown":
            return as_markdown(entries)
        if format == "text":
            return as_text(entries)
        raise InvalidArgument(f"unknown history format {format!r}: use messages, markdown or text")

    @opening
    async def clear_history(self, session_id: str) -> SessionEntry:
        """Hide every entry so far; the session, its counters and checkpoints stay."""
        async with self._locks.hold(session_id):
            session = await self.get_session(session_id)
            change = ViewChange(
                view=cleared_view(session.last_seq),
                message_count=0,
                at=self._clock(),
                expected_version=session.version,
            )
            if not await self.store.change_view(session.id, change):
                raise InvalidArgument(f"session {session_id} changed during the clear; try again")
            return session.model_copy(update={"view": change.view, "message_count": 0, "updated_at": change.at})

    @opening
    async def mark_important(self, session_id: str, seq: int, important: bool = True) -> None:
        if not await self.store.set_important(session_id, seq, important):
            raise InvalidArgument(f"session {session_id} has no entry #{seq}")

    @opening
    async def export(
        self, session_id: str, *, format: ExportFormat = "markdown", include_metadata: bool = False
    ) -> str:
        session = await self.get_session(session_id)
        entries = await self.transcript.all_visible(session)
        if format == "markdown":
            return export_markdown(session, entries, include_metadata=include_metadata)
        if format == "json":
            return export_json(session, entries, include_metadata=include_metadata)
        if format == "jsonl":
            return export_jsonl(entries, include_metadata=include_metadata)
        raise InvalidArgument(f"unknown export format {format!r}: use markdown, json or jsonl")

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
        """Bring the checkpoint's session back to its saved history.

        With `session_id`, the checkpoint must belong to that session's slot; if it belongs to an
        archived session of the slot, that session becomes the active one again first.
        """
        within = None if session_id is None else await self.get_session(session_id)
        checkpoint, owner = await self._checkpoints.find(checkpoint_id, within)
        if owner.status != "active":
            owner = await self.restore_session(owner.id)
        return await self._checkpoints.apply(checkpoint, owner.id)

    @opening
    async def delete_checkpoint(
        self, checkpoint_id: str, *, session_id: str | None = None, key: str | None = None
    ) -> None:
        """Delete it; the event `key`'s retry, after a fault cut its delete short, succeeds too."""
        within = None if session_id is None else await self.get_session(session_id)
        try:
            await self._checkpoints.find(checkpoint_id, within)
        except CheckpointNotFound:
            if key is not None and await self._deletions.noted(key) == {"checkpoint": checkpoint_id}:
                return  # deleted by this event's earlier attempt
            raise
        if key is not None:
            await self._deletions.note(key, {"checkpoint": checkpoint_id})
        await self._checkpoints.delete(checkpoint_id)

    # Settings and maintenance -----------------------------------------------------------------
    @opening
    async def get_settings(self, agent_id: str | None = None) -> AgentSettings:
        return await self.agents.get(agent_id or self._default_agent)

    @opening
    async def set_scope(self, scope: str, *, agent_id: str | None = None) -> AgentSettings:
        return (await self.change_scope(scope, agent_id=agent_id)).settings

    @opening
    async def change_scope(self, scope: str, *, agent_id: str | None = None, key: str | None = None) -> ScopeChange:
        """Change who shares a session. Each active session whose slot the new scope no longer
        has is archived (reason scope-change), so none is left active and unreachable; the
        chat's next message opens its session under the new scope. A retry of the event `key`
        reports the sessions an attempt of it archived before a fault cut it short, too."""
        settings = await self.agents.set_scope(agent_id or self._default_agent, scope)
        archived: list[SessionEntry] = []
        if key is not None:
            before = await self.store.archived_by(key)
            archived += [s for s in before if s.agent_id == settings.agent_id and s.archived_reason == "scope-change"]
        async for session in every_session(self.store, SessionQuery(agent_id=settings.agent_id, status="active")):
            misfit = not key_fits(settings.scope, session.key)
            if misfit and await self.store.archive_session(session.id, "scope-change", self._clock(), by=key):
                archived.append(session)
        return ScopeChange(settings, tuple(archived))

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
        changes = {name: value for name, value in (("enabled", enabled), ("patterns", patterns)) if value is not None}
        return await self.agents.update(agent_id or self._default_agent, redaction=changes)

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
        """Store a summary of entries from_seq..to_seq (the `summarize` context strategy uses it),
        its secrets redacted first."""
        session = await self.get_session(session_id)
        check_summary(session, (from_seq, to_seq), content)
        content = await self.redactions.text(session.agent_id, content, Findings())
        summary_of = (session.id, from_seq, to_seq)
        return await store_summary(self.store, self.transcript, self._clock, summary_of, content, summary_id)

    @opening
    async def get_context_history(
        self, session_id: str, *, max_tokens: int | None = None, strategy: ContextStrategy | None = None
    ) -> ContextWindow:
        """The newest history that fits `max_tokens` under `strategy` (defaults: the agent's settings)."""
        session = await self.get_session(session_id)
        defaults = (await self.get_settings(session.agent_id)).context
        return await build_window(
            self.store,
            self.transcript,
            session,
            max_tokens=defaults.max_tokens if max_tokens is None else max_tokens,
            strategy=strategy or defaults.strategy,
        )
