"""SessionManager: the seed-000 API in Python. The worker is a thin event-driven shell around it."""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Concatenate, Literal, ParamSpec, TypeVar, overload

from pydantic import ValidationError

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
from schemas.base import describe_errors
from worker.engine.clock import Clock
from worker.engine.keyed_lock import KeyedLock
from worker.engine.redaction import Findings
from worker.engine.render import as_markdown, as_text, export_json, export_jsonl, export_markdown
from worker.engine.scope import ChatAddress, key_fits, slot_key
from worker.engine.sealing import seal_summary
from worker.engine.view import cleared_view
from worker.errors import InvalidArgument, SessionNotFound
from worker.sessions.agents import AgentDirectory
from worker.sessions.checkpoints import CheckpointBook
from worker.sessions.context import ContextWindow, build_window
from worker.sessions.maintenance import CleanupReport, CleanupRequest, cleanup, cleanup_budget
from worker.sessions.redacting import Redactions
from worker.sessions.resume import Resumed, Resumer
from worker.sessions.slots import Resolution, SlotResolver
from worker.sessions.transcript import Draft, Transcript
from worker.stores.base import SessionQuery, SessionStore, ViewChange

HistoryFormat = Literal["messages", "markdown", "text"]


@dataclass(frozen=True, slots=True)
class ScopeChange:
    settings: AgentSettings
    archived: tuple[SessionEntry, ...]  # the active sessions the new scope has no slot for


ExportFormat = Literal["markdown", "json", "jsonl"]
MAX_PAGE = 500


def _usage(value: Usage | dict[str, int] | None) -> Usage | None:
    if value is None or isinstance(value, Usage):
        return value
    try:
        return Usage.model_validate(value)
    except ValidationError as exc:
        raise InvalidArgument(f"invalid usage: {describe_errors(exc, where='usage')}") from exc


def _check_content(role: Role, content: str | None, tool: str | None, result: Any) -> None:
    """An entry must say something: text for a message, a name for a tool call, a result."""
    if role == "tool":
        if not tool:
            raise InvalidArgument("a tool entry needs the tool's name")
    elif role == "tool-result":
        if result is None and not content:
            raise InvalidArgument("a tool-result entry needs a result or content")
    elif not isinstance(content, str) or not content.strip():
        raise InvalidArgument(f"{role} entries need text (got {'nothing' if not content else type(content).__name__})")


def _encode_cursor(session: SessionEntry) -> str:
    raw = json.dumps([session.last_activity_at.isoformat(), session.id])
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        moment, session_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(moment).astimezone(UTC), str(session_id)
    except (ValueError, TypeError) as exc:
        raise InvalidArgument("invalid page cursor: pass the next_cursor of the previous page") from exc


P = ParamSpec("P")
T = TypeVar("T")


Method = Callable[Concatenate["SessionManager", P], Coroutine[Any, Any, T]]


def _opening(method: Method[P, T]) -> Method[P, T]:
    """A manager opens itself (tables, indexes) on first use:
    `create_session_manager(...)` then calls; `async with` and `open()` still work."""

    @functools.wraps(method)
    async def opened(self: SessionManager, /, *args: P.args, **kwargs: P.kwargs) -> T:
        if not self._is_open:
            await self.open()
        return await method(self, *args, **kwargs)

    return opened


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
        self._locks = locks
        self._default_agent = "main"
        self.redactions = Redactions(agents.get, store, transcript)
        self._is_open = False
        self._opening = asyncio.Lock()

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
    @_opening
    async def resolve(self, address: ChatAddress, event_id: str | None = None, *, touch: bool = True) -> Resolution:
        """Like get_or_create_session, but also says whether a reset happened on the way."""
        return await self._slots.resolve(await self.agents.get(address.agent_id), address, event_id, touch=touch)

    @_opening
    async def reset_address(
        self, address: ChatAddress, reason: Literal["reset", "new"] = "reset", event_id: str | None = None
    ) -> Resolution:
        """Archive the address's slot session and start a new one; idempotent on `event_id`."""
        settings = await self.agents.get(address.agent_id)
        return await self._slots.reset(settings, address, reason, event_id)

    @_opening
    async def resume(self, address: ChatAddress, session_id: str | None = None, *, key: str | None = None) -> Resumed:
        """Undo a reset: make the address's previous session (or `session_id`, any archived
        session of its slot) active again; what arrived since is appended at its end."""
        settings = await self.agents.get(address.agent_id)
        return await self._resumer.resume(settings.agent_id, slot_key(settings, address), session_id, key)

    @_opening
    async def resume_session(self, session_id: str, *, key: str | None = None) -> Resumed:
        """Resume an archived session by id, in its own slot."""
        target = await self.get_session(session_id)
        return await self._resumer.resume(target.agent_id, target.key, target.id, key)

    @_opening
    async def find_session(self, address: ChatAddress) -> SessionEntry | None:
        """The address's active session if it has one; never creates or resets one."""
        settings = await self.agents.get(address.agent_id)
        return await self.store.find_active(settings.agent_id, slot_key(settings, address))

    @_opening
    async def slot_members(self, address: ChatAddress) -> list[SessionEntry]:
        """Every session (active and archived) of the address's slot, newest first; creates none."""
        settings = await self.agents.get(address.agent_id)
        return await self._checkpoints.sessions_of_slot(settings.agent_id, slot_key(settings, address))

    @_opening
    async def checkpoints_of(self, sessions: list[SessionEntry]) -> list[Checkpoint]:
        return await self._checkpoints.list_of([session.id for session in sessions])

    def check_model(self, settings: AgentSettings, model: str) -> None:
        """Refuses a model outside the agent's allow-list (an empty list allows any)."""
        if not model.strip() or len(model) > 200:
            raise InvalidArgument("a model name is 1 to 200 characters")
        if settings.allowed_models and model not in settings.allowed_models:
            allowed = ", ".join(settings.allowed_models)
            raise InvalidArgument(f"model {model!r} is not available here; choose one of: {allowed}")

    @_opening
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

    @_opening
    async def slot_sessions(self, session_id: str) -> list[SessionEntry]:
        """Every session (active and archived) of the session's slot, newest first."""
        return await self._checkpoints.slot_sessions(await self.get_session(session_id))

    @_opening
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

    @_opening
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

    @_opening
    async def get_session(self, session_id: str) -> SessionEntry:
        session = await self.store.get_session(session_id)
        if session is None:
            raise SessionNotFound(f"no session {session_id}")
        return session

    @_opening
    async def restore_session(self, session_id: str) -> SessionEntry:
        """Make an archived session the active one of its slot again (the current one is archived)."""
        target = await self.get_session(session_id)
        if target.status == "active":
            return target
        async with self._locks.hold(f"slot:{target.agent_id}:{target.key}"):
            now = self._clock()
            current = await self.store.find_active(target.agent_id, target.key)
            if current is not None:
                await self.store.archive_session(current.id, "superseded", now)
            generation = await self.store.last_generation(target.agent_id, target.key) + 1
            if not await self.store.reactivate_session(target.id, generation, now):
                raise InvalidArgument(f"session {session_id} could not be restored; it changed meanwhile")
        return await self.get_session(session_id)

    @_opening
    async def list_sessions(
        self,
        *,
        agent_id: str | None = None,
        status: SessionStatus | None = None,
        active_within_minutes: int | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> SessionPage:
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidArgument(f"limit must be between 1 and {MAX_PAGE}")
        since = None
        if active_within_minutes is not None:
            since = self._clock() - timedelta(minutes=active_within_minutes)
        query = SessionQuery(
            agent_id=agent_id,
            status=status,
            active_since=since,
            limit=limit + 1,
            after=None if cursor is None else _decode_cursor(cursor),
        )
        found = await self.store.list_sessions(query)
        items = tuple(found[:limit])
        next_cursor = _encode_cursor(items[-1]) if len(found) > limit else None
        return SessionPage(items=items, next_cursor=next_cursor)

    # Messages and history ---------------------------------------------------------------------
    @_opening
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
        _check_content(role, content, tool, result)
        draft = Draft(
            role=role,
            content=content,
            tool=tool,
            args=args,
            result=result,
            usage=_usage(usage),
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
        await self.open()  # overloaded, so not @_opening: opens itself on first use all the same
        entries = await self.transcript.newest(await self.get_session(session_id), limit)
        if format == "messages":
            return entries
        if format == "markdown":
            return as_markdown(entries)
        if format == "text":
            return as_text(entries)
        raise InvalidArgument(f"unknown history format {format!r}: use messages, markdown or text")

    @_opening
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

    @_opening
    async def mark_important(self, session_id: str, seq: int, important: bool = True) -> None:
        if not await self.store.set_important(session_id, seq, important):
            raise InvalidArgument(f"session {session_id} has no entry #{seq}")

    @_opening
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
    @_opening
    async def save_checkpoint(
        self, session_id: str, name: str, description: str | None = None, *, checkpoint_id: str | None = None
    ) -> Checkpoint:
        """Save the session's history as it is; the name and description are redacted first."""
        agent_id = (await self.get_session(session_id)).agent_id
        findings = Findings()
        name = await self.redactions.text(agent_id, name, findings)
        description = await self.redactions.optional(agent_id, description, findings)
        return await self._checkpoints.save(session_id, name, description, checkpoint_id)

    @_opening
    async def list_checkpoints(self, session_id: str, *, whole_slot: bool = False) -> list[Checkpoint]:
        return await self._checkpoints.list_for(session_id, whole_slot=whole_slot)

    @_opening
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

    @_opening
    async def delete_checkpoint(self, checkpoint_id: str, *, session_id: str | None = None) -> None:
        within = None if session_id is None else await self.get_session(session_id)
        await self._checkpoints.find(checkpoint_id, within)
        await self._checkpoints.delete(checkpoint_id)

    # Settings and maintenance -----------------------------------------------------------------
    @_opening
    async def get_settings(self, agent_id: str | None = None) -> AgentSettings:
        return await self.agents.get(agent_id or self._default_agent)

    @_opening
    async def set_scope(self, scope: str, *, agent_id: str | None = None) -> AgentSettings:
        return (await self.change_scope(scope, agent_id=agent_id)).settings

    @_opening
    async def change_scope(self, scope: str, *, agent_id: str | None = None) -> ScopeChange:
        """Change who shares a session. Each active session whose slot the new scope no longer
        has is archived (reason scope-change), so none is left active and unreachable; the
        chat's next message opens its session under the new scope."""
        settings = await self.agents.set_scope(agent_id or self._default_agent, scope)
        archived: list[SessionEntry] = []
        after: tuple[datetime, str] | None = None
        while page := await self.store.list_sessions(
            SessionQuery(agent_id=settings.agent_id, status="active", limit=MAX_PAGE, after=after)
        ):
            for session in page:
                misfit = not key_fits(settings.scope, session.key)
                if misfit and await self.store.archive_session(session.id, "scope-change", self._clock()):
                    archived.append(session)
            after = (page[-1].last_activity_at, page[-1].id)
        return ScopeChange(settings, tuple(archived))

    @_opening
    async def set_reset_time(
        self, daily_at: str, *, time_zone: str | None = None, agent_id: str | None = None
    ) -> AgentSettings:
        return await self.agents.set_reset_time(agent_id or self._default_agent, daily_at, time_zone)

    @_opening
    async def set_idle_reset(self, minutes: int, *, agent_id: str | None = None) -> AgentSettings:
        return await self.agents.set_idle_reset(agent_id or self._default_agent, minutes)

    @_opening
    async def set_redaction(
        self, *, enabled: bool | None = None, patterns: list[dict[str, str]] | None = None, agent_id: str | None = None
    ) -> AgentSettings:
        """Switch the agent's redaction on or off, or replace its own patterns ({kind, pattern} each)."""
        changes = {name: value for name, value in (("enabled", enabled), ("patterns", patterns)) if value is not None}
        return await self.agents.update(agent_id or self._default_agent, redaction=changes)

    @_opening
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

    @_opening
    async def cleanup_budget(self, *, agent_id: str | None = None, dry_run: bool = False) -> CleanupReport:
        """Bring an agent over its store budget (retention.max_store_bytes) back under its
        high-water mark now: the longest-inactive sessions go, never below keep_minimum."""
        settings = await self.get_settings(agent_id)
        return await cleanup_budget(self.store, self._clock, settings.agent_id, settings.retention, dry_run=dry_run)

    # Context windows --------------------------------------------------------------------------
    @_opening
    async def add_summary(
        self, session_id: str, from_seq: int, to_seq: int, content: str, *, summary_id: str | None = None
    ) -> Summary:
        """Store a summary of entries from_seq..to_seq (the `summarize` context strategy uses it),
        its secrets redacted first."""
        session = await self.get_session(session_id)
        if not 1 <= from_seq <= to_seq <= session.last_seq:
            raise InvalidArgument(
                f"summary range {from_seq}..{to_seq} is outside the transcript (entries 1..{session.last_seq})"
            )
        if not content.strip():
            raise InvalidArgument("a summary needs text")
        content = await self.redactions.text(session.agent_id, content, Findings())
        summary = Summary(
            id=summary_id or f"sum_{uuid.uuid4().hex[:16]}",
            session_id=session.id,
            from_seq=from_seq,
            to_seq=to_seq,
            content=content,
            token_count=self.transcript.count_tokens(content),
            created_at=self._clock(),
        )
        await self.store.insert_summary(seal_summary(self.transcript.codec, summary))
        return summary

    @_opening
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
