"""Applying inbound events through the engine. Pure domain: no broker here.

Each handler is idempotent on the event id (stored entries, session openers and checkpoint ids
derive from it) and every produced event's id derives from the event id too, so a replay yields
the same effect and the same outbound ids.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from schemas import DeliveryContext, SessionEntry, Summary
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
    RetentionDue,
    SessionResetDue,
    SummaryProduced,
)
from schemas.outbound import NoticeEvent, NoticeKind, ReplyEvent, ReplyKind, TurnEvent
from worker.clock import Clock
from worker.command_runner import CommandRunner
from worker.commands import Command, CommandError, is_command, parse_command
from worker.control import ignored, kept_minimum, past_rule, rule_limit
from worker.errors import SessionNotActive, SessionNotFound, SessionsError
from worker.manager import SessionManager
from worker.outcome import Outcome, derived_id
from worker.resets import reset_due
from worker.scope import ChatAddress, session_key
from worker.sealing import seal_summary
from worker.slots import Resolution


class Rejected(Exception):
    """The event cannot be applied and has nobody to answer: dead-letter it with this reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def address_of(agent_id: str, source: ChatSource) -> ChatAddress:
    return ChatAddress(
        agent_id=agent_id,
        channel=source.channel,
        user_id=source.user_id,
        peer_id=source.peer_id,
        account_id=source.account_id,
        thread_id=source.thread_id,
        message_id=source.message_id,
        chat_type=source.chat_type,
    )


def ordering_key(agent_id: str, source: ChatSource) -> str:
    """The routing key gateways publish with: the finest slot, so one chat is always in order."""
    return session_key("per-channel-peer", address_of(agent_id, source))


class EventProcessor:
    def __init__(self, manager: SessionManager, clock: Clock, *, max_reply_chars: int = 4000) -> None:
        self._manager = manager
        self._clock = clock
        self._commands = CommandRunner(manager, max_reply_chars=max_reply_chars)
        self._handlers: dict[str, Callable[..., Awaitable[Outcome]]] = {
            "message.inbound": self._inbound,
            "command": self._command_event,
            "checkpoint.save": self._checkpoint_event,
            "checkpoint.restore": self._checkpoint_event,
            "checkpoint.delete": self._checkpoint_event,
            "message.agent": self._agent_message,
            "summary": self._summary,
            "entry.important": self._important,
            "session.reset": self._scheduled_reset,
            "session.retention": self._retention,
        }

    async def slot_key(self, event: InboundEvent) -> str:
        """The routing key under which this event must be applied: its session's slot key."""
        if isinstance(event, InboundMessage | CommandEvent | CheckpointSave | CheckpointRestore | CheckpointDelete):
            settings = await self._manager.get_settings(event.agent_id)
            return session_key(settings.scope, address_of(event.agent_id, event.source))
        try:
            return (await self._manager.get_session(event.session_id)).key
        except SessionNotFound:
            return ""  # nothing to order against: apply wherever it landed

    async def apply(self, event: InboundEvent) -> Outcome:
        return await self._handlers[event.type](event)

    # Chat events ------------------------------------------------------------------------------
    async def _inbound(self, event: InboundMessage) -> Outcome:
        if is_command(event.text):
            return await self._run_text_command(event, event.source, event.text)
        address = address_of(event.agent_id, event.source)
        delivery = address.delivery()
        resolution = await self._manager.resolve(address, event.event_id, touch=False)
        try:
            entry = await self._manager.add_message(
                resolution.session.id, "user", event.text, event_id=event.event_id, delivery=delivery
            )
        except SessionNotActive:
            # Archived by another process since this worker last saw it: find the slot's session anew.
            resolution = await self._manager.resolve(address, event.event_id, touch=False)
            entry = await self._manager.add_message(
                resolution.session.id, "user", event.text, event_id=event.event_id, delivery=delivery
            )
        turn = TurnEvent(
            event_id=derived_id(event.event_id, "turn"),
            in_reply_to=event.event_id,
            agent_id=event.agent_id,
            session_id=entry.session_id,
            seq=entry.seq,
            text=event.text,
            delivery=delivery,
            ordering_key=resolution.session.key,
            occurred_at=entry.timestamp,  # the stored entry's: a replay rebuilds this very event
        )
        if resolution.archived is None:
            return Outcome(turns=(turn,))
        return await self._reset_notice(event.event_id, resolution, delivery) + Outcome(turns=(turn,))

    async def _command_event(self, event: CommandEvent) -> Outcome:
        return await self._run_text_command(event, event.source, event.command)

    async def _run_text_command(self, event: InboundMessage | CommandEvent, source: ChatSource, text: str) -> Outcome:
        try:
            command = parse_command(text)
        except CommandError as exc:
            return self._reply(event.event_id, event.agent_id, None, str(exc), source, "error")
        return await self._run(event.event_id, event.agent_id, source, command)

    async def _checkpoint_event(self, event: CheckpointSave | CheckpointRestore | CheckpointDelete) -> Outcome:
        if isinstance(event, CheckpointSave):
            command = Command("checkpoint", "save", (event.name, *([event.description] if event.description else [])))
        else:
            command = Command("checkpoint", event.type.split(".")[1], (event.checkpoint_id,))
        return await self._run(event.event_id, event.agent_id, event.source, command)

    async def _run(self, event_id: str, agent_id: str, source: ChatSource, command: Command) -> Outcome:
        address = address_of(agent_id, source)
        try:
            result = await self._commands.run(command, address, event_id)
        except SessionsError as exc:
            if not exc.code.startswith(("invalid", "checkpoint", "session-not", "content")):
                raise
            return self._reply(event_id, agent_id, None, f"{exc} (usage: {command.usage})", source, "error")
        return self._reply(event_id, agent_id, result.session_id, result.text, source, "command-result")

    # Agent runtime events -----------------------------------------------------------------------
    async def _agent_message(self, event: AgentMessage) -> Outcome:
        session = await self._session_or_reject(event.session_id, event)
        entry = await self._manager.add_message(
            session.id,
            event.role,
            event.content,
            usage=event.usage,
            tool=event.tool,
            args=event.args,
            result=event.result,
            important=event.important,
            event_id=event.event_id,
            allow_archived=True,
        )
        if event.role != "assistant" or not entry.content:
            return Outcome()
        delivery = await self._route_for(session, event.in_reply_to)
        reply = ReplyEvent(
            event_id=derived_id(event.event_id, "reply"),
            in_reply_to=event.in_reply_to or event.event_id,
            kind="assistant",
            agent_id=event.agent_id,
            session_id=session.id,
            text=entry.content,
            delivery=delivery,
            occurred_at=self._clock(),
        )
        return Outcome(replies=(reply,))

    async def _route_for(self, session: SessionEntry, in_reply_to: str | None) -> DeliveryContext:
        """Where the answered message came from; the session's last route only as a fallback."""
        if in_reply_to is not None:
            answered = await self._manager.store.find_entry_by_event(in_reply_to)
            if answered is not None and answered.session_id == session.id and answered.delivery is not None:
                return answered.delivery
        if session.delivery_context is None:
            raise Rejected("no-route", f"session {session.id} has no delivery context to reply to")
        return session.delivery_context.model_copy(update={"reply_to_id": None})

    async def _summary(self, event: SummaryProduced) -> Outcome:
        session = await self._session_or_reject(event.session_id, event)
        if event.to_seq < event.from_seq or event.to_seq > session.last_seq:
            raise Rejected("invalid-range", f"summary range {event.from_seq}..{event.to_seq} is outside the transcript")
        tokens = self._manager.transcript.count_tokens(event.content)
        await self._manager.store.insert_summary(
            seal_summary(
                self._manager.transcript.codec,
                Summary(
                    id=derived_id(event.event_id, "summary"),
                    session_id=session.id,
                    from_seq=event.from_seq,
                    to_seq=event.to_seq,
                    content=event.content,
                    token_count=tokens,
                    created_at=self._clock(),
                ),
            )
        )
        return Outcome()

    async def _important(self, event: MarkImportant) -> Outcome:
        try:
            await self._manager.mark_important(event.session_id, event.seq, event.important)
        except SessionsError as exc:
            raise Rejected("not-found", str(exc)) from exc
        return Outcome()

    # Scheduler events -------------------------------------------------------------------------
    # Authenticated (worker/amqp/trust.py) and re-checked here against the store: an event that
    # the session's current state does not justify changes nothing, and says so in one log line.
    async def _scheduled_reset(self, event: SessionResetDue) -> Outcome:
        session = await self._manager.store.get_session(event.session_id)
        if session is None or session.status != "active" or session.last_activity_at > event.due_at:
            return Outcome()  # already rolled over, deleted, or active again since it fell due
        if session.agent_id != event.agent_id:
            return ignored(event, f"the session belongs to agent {session.agent_id!r}")
        settings = await self._manager.get_settings(session.agent_id)
        due = reset_due(settings.reset, session.last_activity_at, self._clock())
        if due is None:
            return ignored(event, "the session is not due for a reset under its agent's policy")
        if not await self._manager.store.archive_session(session.id, due.reason, self._clock()):
            return Outcome()
        text = f"session reset: {due.describe(settings.reset)}"
        return self._notice(event.event_id, session, "session-reset", text, session.delivery_context)

    async def _retention(self, event: RetentionDue) -> Outcome:
        session = await self._manager.store.get_session(event.session_id)
        if session is None:
            return Outcome()  # deleted already: a second scheduler or a replay
        if session.agent_id != event.agent_id:
            return ignored(event, f"the session belongs to agent {session.agent_id!r}")
        retention = (await self._manager.get_settings(session.agent_id)).retention
        if not past_rule(session, event.rule, retention, self._clock()):
            return ignored(event, f"the session is not past {event.rule} ({rule_limit(event.rule, retention)})")
        if await kept_minimum(self._manager.store, session, retention.keep_minimum):
            return ignored(event, f"keep_minimum ({retention.keep_minimum}) protects the session")
        if event.mode == "warn" or retention.mode == "warn":
            text = f"session {session.id} is past retention ({event.rule}) and would be deleted"
            return self._notice(event.event_id, session, "retention-warning", text, None)
        counts = await self._manager.store.delete_sessions([session.id])
        text = f"session {session.id} deleted by retention ({event.rule}): {counts.entries} entries"
        return self._notice(event.event_id, session, "retention-deleted", text, None)

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

    def _reply(
        self, event_id: str, agent_id: str, session_id: str | None, text: str, source: ChatSource, kind: ReplyKind
    ) -> Outcome:
        delivery = address_of(agent_id, source).delivery()
        reply = ReplyEvent(
            event_id=derived_id(event_id, "reply"),
            in_reply_to=event_id,
            kind=kind,
            agent_id=agent_id,
            session_id=session_id,
            text=text,
            delivery=delivery,
            occurred_at=self._clock(),
        )
        return Outcome(replies=(reply,))

    async def _reset_notice(self, event_id: str, resolution: Resolution, delivery: DeliveryContext) -> Outcome:
        if resolution.archived is None or resolution.due is None:
            return Outcome()
        settings = await self._manager.get_settings(resolution.archived.agent_id)
        text = f"session reset: {resolution.due.describe(settings.reset)}"
        return self._notice(event_id, resolution.archived, "session-reset", text, delivery)

    def _notice(
        self, event_id: str, session: SessionEntry, kind: NoticeKind, text: str, delivery: DeliveryContext | None
    ) -> Outcome:
        notice = NoticeEvent(
            event_id=derived_id(event_id, f"notice:{kind}"),
            in_reply_to=event_id,
            kind=kind,
            agent_id=session.agent_id,
            session_id=session.id,
            text=text,
            delivery=delivery,
            occurred_at=self._clock(),
        )
        replies: tuple[ReplyEvent, ...] = ()
        if delivery is not None and delivery.channel:
            replies = (
                ReplyEvent(
                    event_id=derived_id(event_id, f"reply:{kind}"),
                    in_reply_to=event_id,
                    kind="notice",
                    agent_id=session.agent_id,
                    session_id=session.id,
                    text=text,
                    delivery=delivery,
                    occurred_at=self._clock(),
                ),
            )
        return Outcome(notices=(notice,), replies=replies)
