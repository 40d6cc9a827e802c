"""Applying inbound events through the engine. Pure domain: no broker here.

Each handler is idempotent on the event's scoped key (the event id within its chat or session,
worker.engine.idempotency): every stored entry, session and produced event's id derives from it.
Secrets are redacted (worker.sessions.redacting) before anything is stored, sealed, counted or published.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable

from schemas import DeliveryContext, SessionEntry, TranscriptEntry
from schemas.events import (
    AgentMessage,
    ChatSource,
    CheckpointDelete,
    CheckpointRestore,
    CheckpointSave,
    CommandEvent,
    InboundEvent,
    InboundMessage,
    MarkImportant,
    ModelChange,
    SessionResetDue,
    SessionResume,
    SummaryProduced,
)
from schemas.outbound import ReplyEvent, TurnEvent
from schemas.topology import routable
from worker.commands import Command, CommandError, CommandRunner, command_for, is_command, parse_command
from worker.commands.handlers import UNDO, model_name, plural
from worker.engine.clock import Clock
from worker.engine.idempotency import (
    CHAT_EVENTS,
    Identity,
    blurred,
    chat_scope,
    identify,
    scoped,
    source_scope,
)
from worker.engine.outcome import Outcome, derived_id
from worker.engine.redaction import Findings
from worker.engine.resets import ResetDue, reset_of, session_policy, session_reset_due
from worker.engine.scope import session_key, slot_key
from worker.errors import (
    ContentTooLarge,
    EventIdConflict,
    InvalidArgument,
    RequestError,
    SessionNotActive,
    SessionNotFound,
)
from worker.service.announcements import Announcer, address_of
from worker.service.control import ignored
from worker.service.inbound import ChatToAnswer
from worker.service.retention import RetentionDeletes
from worker.sessions.manager import SessionManager
from worker.sessions.redacting import RedactionCounter, RedactionStep
from worker.sessions.transcript import Draft
from worker.stores.base import StoredEntry


class Rejected(Exception):
    """The event cannot be applied: dead-letter it with this reason, after publishing `answer`
    (an error reply to the chat it came from) when there is one."""

    def __init__(self, reason: str, detail: str, answer: Outcome | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.answer = answer


def recorded_first(event: InboundEvent) -> bool:
    """Whether only the outcome record can tell that this event was applied before (commands,
    checkpoints, summaries, scheduler events): look it up before applying. Chat and agent messages
    find their stored entry instead, and consult the record only then."""
    if isinstance(event, InboundMessage):
        return is_command(event.text)
    return not isinstance(event, AgentMessage)


def ordering_key(agent_id: str, source: ChatSource) -> str:
    """The routing key gateways publish with: the finest slot, so one chat is always in order."""
    return routable(session_key("per-channel-peer", address_of(agent_id, source)))


class EventProcessor:
    def __init__(
        self,
        manager: SessionManager,
        clock: Clock,
        *,
        max_reply_chars: int = 4000,
        on_redacted: RedactionCounter | None = None,
    ) -> None:
        self._manager = manager
        self._clock = clock
        self._say = Announcer(clock)
        self.redacting = RedactionStep(manager.redactions, on_redacted)
        self._commands = CommandRunner(manager, max_reply_chars=max_reply_chars)
        self._retention = RetentionDeletes(manager, clock, self._say)
        self._handlers: dict[str, Callable[..., Awaitable[Outcome]]] = {
            "message.inbound": self._inbound,
            "command": self._command_event,
            "checkpoint.save": self._checkpoint_event,
            "checkpoint.restore": self._checkpoint_event,
            "checkpoint.delete": self._checkpoint_event,
            "message.agent": self._agent_message,
            "summary": self._summary,
            "entry.important": self._important,
            "session.model": self._model,
            "session.resume": self._resume,
            "session.reset": self._scheduled_reset,
            "session.retention": self._retention.apply,
        }

    async def slot_key(self, event: InboundEvent) -> str:
        """The routing key under which this event must be applied: its session's slot key."""
        if isinstance(event, CHAT_EVENTS):
            settings = await self._manager.get_settings(event.agent_id)
            return routable(slot_key(settings, address_of(event.agent_id, event.source)))
        try:
            return routable((await self._manager.get_session(event.session_id)).key)
        except SessionNotFound:
            return ""  # nothing to order against: apply wherever it landed

    async def apply(self, event: InboundEvent, identity: Identity | None = None) -> Outcome:
        """Apply the event once; raises Rejected for what must be dead-lettered."""
        try:
            return await self._handlers[event.type](event, identity or identify(event))
        except EventIdConflict as exc:
            raise Rejected("event-id-conflict", str(exc)) from exc

    async def entry_holds(self, key: str) -> bool:
        """Whether a transcript entry is stored under this key."""
        return await self._manager.store.find_entry_by_event(key) is not None

    def answer_rejected(self, chat: ChatToAnswer, text: str, fallback_id: str) -> Outcome:
        """The error reply to the chat a rejected event came from (`fallback_id` when its id is unreadable)."""
        key = scoped(chat.event_id or fallback_id, source_scope(chat.agent_id, chat.source))
        return self._say.reply(Identity(key, ""), chat.agent_id, None, text, chat.source, "error")

    # Chat events ------------------------------------------------------------------------------
    async def _inbound(self, event: InboundMessage, identity: Identity) -> Outcome:
        if is_command(event.text):
            return await self._run_text_command(event, identity, event.text)
        address = address_of(event.agent_id, event.source)
        delivery = address.delivery()
        findings = Findings()
        text = await self.redacting.text(event.agent_id, event.text, findings)
        fingerprint = blurred(identity.fingerprint) if findings else identity.fingerprint
        draft = Draft(role="user", content=text, event_id=identity.key, delivery=delivery, fingerprint=fingerprint)
        try:
            resolution = await self._manager.resolve(address, identity.key, touch=False)
            try:
                entry, before = await self._manager.transcript.append_once(resolution.session.id, draft)
            except SessionNotActive:
                # Archived by another process since this worker last saw it: find the slot's session anew.
                resolution = await self._manager.resolve(address, identity.key, touch=False)
                entry, before = await self._manager.transcript.append_once(resolution.session.id, draft)
        except ContentTooLarge as exc:
            answer = self._say.reply(
                identity, event.agent_id, None, f"message not stored: {exc}", event.source, "error"
            )
            raise Rejected("too-long", str(exc), answer) from exc
        self.redacting.count(findings, before)
        written = await self._manager.transcript.current_session(entry.session_id) or resolution.session
        turn = TurnEvent(
            event_id=derived_id(identity.key, "turn"),
            model=model_name(written),
            in_reply_to=event.event_id,
            agent_id=event.agent_id,
            session_id=entry.session_id,
            seq=entry.seq,
            text=entry.content or "",  # as stored: redacted
            delivery=delivery,
            ordering_key=routable(resolution.session.key),
            occurred_at=entry.timestamp,  # the stored entry's: a replay rebuilds this very event
        )
        turns = Outcome(turns=(turn,), applied_before=before, held_secret=bool(findings))
        told = await self._redaction_notice(identity, findings, resolution.session, entry, delivery)
        if resolution.archived is None:
            return told + turns
        return await self._reset_notice(identity, resolution.archived, resolution.due, delivery) + told + turns

    async def _command_event(self, event: CommandEvent, identity: Identity) -> Outcome:
        return await self._run_text_command(event, identity, event.command)

    async def _run_text_command(self, event: InboundMessage | CommandEvent, identity: Identity, text: str) -> Outcome:
        (redacted,) = await self.redacting.counted(event.agent_id, text)  # arguments are stored, echoed
        try:
            command = parse_command(redacted)
        except CommandError as exc:
            answer = self._say.reply(identity, event.agent_id, None, str(exc), event.source, "error")
            return answer.holding_secret(redacted != text)
        outcome = await self._run(identity, event.agent_id, event.source, command)
        return outcome.holding_secret(redacted != text)

    async def _checkpoint_event(
        self, event: CheckpointSave | CheckpointRestore | CheckpointDelete, identity: Identity
    ) -> Outcome:
        if isinstance(event, CheckpointSave):
            args = (event.name, *([event.description] if event.description else []))
        else:
            args = (event.checkpoint_id,)
        redacted = await self.redacting.counted(event.agent_id, *args)
        command = command_for("checkpoint", event.type.split(".")[1], redacted)
        return (await self._run(identity, event.agent_id, event.source, command)).holding_secret(redacted != args)

    async def _run(self, identity: Identity, agent_id: str, source: ChatSource, command: Command) -> Outcome:
        address = address_of(agent_id, source)
        try:
            opened = await self._commands.open(command, address, identity.key)
        except RequestError as exc:
            return self._command_error(identity, agent_id, source, command, exc)
        told = Outcome()
        if opened.reset is not None:  # opening the chat's session reset it: said first, whatever follows
            archived, due = opened.reset
            told = await self._reset_notice(identity, archived, due, address.delivery())
        try:
            result = await self._commands.run(opened)
        except RequestError as exc:
            return told + self._command_error(identity, agent_id, source, command, exc)
        answer = told + self._say.reply(identity, agent_id, result.session_id, result.text, source, "command-result")
        for archived in result.archived_elsewhere:
            text = (
                f"This chat's session {archived.id} was archived (kept) because the agent's session scope"
                " changed; your next message starts a new session. To undo, an admin sets the scope back,"
                " then /session resume brings it back."
            )
            answer += self._say.notice(identity, archived, "scope-change", text, archived.delivery_context, each=True)
        return answer

    def _command_error(
        self, identity: Identity, agent_id: str, source: ChatSource, command: Command, exc: RequestError
    ) -> Outcome:
        text = f"{exc} (usage: {command.usage})" if isinstance(exc, InvalidArgument) else str(exc)
        return self._say.reply(identity, agent_id, None, text, source, "error")

    # Agent runtime events -----------------------------------------------------------------------
    async def _agent_message(self, event: AgentMessage, identity: Identity) -> Outcome:
        session = await self._session_or_reject(event.session_id, event)
        findings = Findings()
        draft = Draft(
            role=event.role,
            content=event.content,
            tool=event.tool,
            args=event.args,
            result=event.result,
            usage=event.usage,
            important=event.important,
            event_id=identity.key,
            fingerprint=identity.fingerprint,
        )
        draft = await self.redacting.redactions.draft(event.agent_id, draft, findings)
        if findings:
            draft = dataclasses.replace(draft, fingerprint=blurred(identity.fingerprint))
        try:
            entry, before = await self._manager.transcript.append_once(session.id, draft, allow_archived=True)
        except ContentTooLarge as exc:
            raise Rejected("too-long", str(exc)) from exc
        self.redacting.count(findings, before)
        if event.role != "assistant" or not entry.content:
            # No reply to route by: a notice goes to the chat the session last heard from.
            told = await self._redaction_notice(identity, findings, session, entry, session.delivery_context)
            return Outcome(applied_before=before, held_secret=bool(findings)) + told
        delivery = await self._route_for(session, event)
        told = await self._redaction_notice(identity, findings, session, entry, delivery)
        reply = ReplyEvent(
            event_id=derived_id(identity.key, "reply"),
            in_reply_to=event.in_reply_to or event.event_id,
            kind="assistant",
            agent_id=event.agent_id,
            session_id=session.id,
            text=entry.content,
            delivery=delivery,
            occurred_at=entry.timestamp,  # the stored entry's: a replay rebuilds this very event
        )
        return Outcome(replies=(reply,), applied_before=before, held_secret=bool(findings)) + told

    async def _route_for(self, session: SessionEntry, event: AgentMessage) -> DeliveryContext:
        """Where the answered message came from; the session's last route only as a fallback."""
        answered = await self._answered_entry(session, event)
        if answered is not None and answered.session_id == session.id and answered.delivery is not None:
            return answered.delivery
        if session.delivery_context is None:
            raise Rejected("no-route", f"session {session.id} has no delivery context to reply to")
        return session.delivery_context.model_copy(update={"reply_to_id": None})

    async def _answered_entry(self, session: SessionEntry, event: AgentMessage) -> StoredEntry | None:
        """The user entry the message answers: by its seq (exact), else by the event id it answers
        within the chat the session last heard from."""
        if event.in_reply_to_seq is not None:
            found = await self._manager.store.read_entries(session.id, event.in_reply_to_seq, event.in_reply_to_seq, 1)
            return next((entry for entry in found if entry.role == "user"), None)
        route = session.delivery_context
        if event.in_reply_to is None or route is None:
            return None
        chat = chat_scope(session.agent_id, route.channel, route.account_id, route.to)
        return await self._manager.store.find_entry_by_event(scoped(event.in_reply_to, chat))

    async def _summary(self, event: SummaryProduced, identity: Identity) -> Outcome:
        session = await self._session_or_reject(event.session_id, event)
        (content,) = await self.redacting.counted(event.agent_id, event.content)
        summary_id = derived_id(identity.key, "summary")
        try:
            await self._manager.add_summary(session.id, event.from_seq, event.to_seq, content, summary_id=summary_id)
        except InvalidArgument as exc:
            raise Rejected("invalid-range", str(exc)) from exc
        return Outcome()

    async def _important(self, event: MarkImportant, identity: Identity) -> Outcome:
        session = await self._session_or_reject(event.session_id, event)
        try:
            await self._manager.mark_important(session.id, event.seq, event.important)
        except RequestError as exc:  # not a store fault: those are waited out, never dead-lettered
            raise Rejected("not-found", str(exc)) from exc
        return Outcome()

    async def _model(self, event: ModelChange, identity: Identity) -> Outcome:
        session = await self._session_or_reject(event.session_id, event)
        try:
            await self._manager.set_model(session.id, event.model)
        except InvalidArgument as exc:
            raise Rejected("refused", str(exc)) from exc
        return Outcome()

    async def _resume(self, event: SessionResume, identity: Identity) -> Outcome:
        session = await self._session_or_reject(event.session_id, event)
        try:
            resumed = await self._manager.resume_session(session.id, key=identity.key)
        except RequestError as exc:
            raise Rejected("refused", str(exc)) from exc
        text = f"Session {resumed.session.id} resumed ({plural(resumed.carried, 'message')} since the reset added)."
        return self._say.notice(identity, resumed.session, "session-resumed", text, resumed.session.delivery_context)

    # Scheduler events -------------------------------------------------------------------------
    # Authenticated (worker/amqp/trust.py) and re-checked here against the store: an event that
    # the session's current state does not justify changes nothing, and says so in one log line.
    async def _scheduled_reset(self, event: SessionResetDue, identity: Identity) -> Outcome:
        session = await self._manager.store.get_session(event.session_id)
        if session is not None and session.status == "archived" and session.archived_by == identity.key:
            # A retry: the first attempt archived it, and a fault cut it short before the notice.
            return await self._reset_notice(identity, session, None, session.delivery_context)
        if session is None or session.status != "active" or session.last_activity_at > event.due_at:
            return Outcome()  # already rolled over, deleted, or active again since it fell due
        if session.agent_id != event.agent_id:
            return ignored(event, f"the session belongs to agent {session.agent_id!r}")
        settings = await self._manager.get_settings(session.agent_id)
        due = session_reset_due(settings.reset, session, self._clock())
        if due is None:
            return ignored(event, "the session is not due for a reset under its agent's policy")
        if not await self._manager.store.archive_session(session.id, due.reason, self._clock(), by=identity.key):
            return Outcome()
        return await self._reset_notice(identity, session, due, session.delivery_context)

    # Helpers -----------------------------------------------------------------------------------
    async def _session_or_reject(self, session_id: str, event: InboundEvent) -> SessionEntry:
        try:
            session = await self._manager.get_session(session_id)
        except SessionNotFound as exc:
            raise Rejected(
                "unknown-session", f"{event.type} {event.event_id} names unknown session {session_id}"
            ) from exc
        if session.agent_id != event.agent_id:
            raise Rejected("unknown-session", f"session {session_id} does not belong to agent {event.agent_id}")
        return session

    async def _redaction_notice(
        self,
        identity: Identity,
        findings: Findings,
        session: SessionEntry,
        entry: TranscriptEntry,
        delivery: DeliveryContext | None,
    ) -> Outcome:
        """The chat is told once per session (derived from the stored entries: a replay decides the same)."""
        text = await self.redacting.notice(findings, entry.session_id, entry.seq)
        if text is None:
            return Outcome()
        return self._say.notice(identity, session, "secrets-redacted", text, delivery)

    async def _reset_notice(
        self, identity: Identity, archived: SessionEntry, due: ResetDue | None, delivery: DeliveryContext | None
    ) -> Outcome:
        """The notice of a daily or idle reset; `due` None rebuilds it from how the session was archived."""
        due = due or reset_of(archived)
        if due is None:
            return Outcome()
        settings = await self._manager.get_settings(archived.agent_id)
        text = f"session reset: {due.describe(session_policy(settings.reset, archived))}. {UNDO}."
        return self._say.notice(identity, archived, "session-reset", text, delivery)
