"""Inbound events: what gateways, agent runtimes, APIs and the scheduler publish to the workers.

Every event is versioned JSON with an `event_id` (the idempotency key), a `type`, `occurred_at`
and `agent_id`. Ids are strings as the platforms send them (Telegram's negative ids, Signal's
base64, Matrix `@user:server`): trimmed, then bounded in length and free of control characters.
They are only ever compared as values, so no id can act as a query operator.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, AwareDatetime, Field, StringConstraints, TypeAdapter, model_validator
from pydantic_core import PydanticCustomError

from schemas.base import WireModel, utc_now
from schemas.delivery import ChatType, normalize_channel
from schemas.limits import MAX_COMMAND_CHARS, MAX_ID_CHARS, MAX_INT, MAX_TEXT_CHARS, bounded_json
from schemas.transcript import Usage

SCHEMA_VERSION: Literal[1] = 1
# No control characters (C0, DEL, C1): they break logs, terminals and key encodings.
NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f-\x9f]+$"
SafeId = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_ID_CHARS, pattern=NO_CONTROL_CHARACTERS)
]
Channel = Annotated[SafeId, AfterValidator(lambda value: normalize_channel(value) or value)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS)]
Seq = Annotated[int, Field(ge=1, le=MAX_INT)]


class EventBase(WireModel):
    version: Literal[1] = Field(default=SCHEMA_VERSION, description="contract version")
    event_id: SafeId = Field(description="idempotency key: the same id is applied once, its replies re-published")
    occurred_at: AwareDatetime = Field(default_factory=utc_now, description="when it happened (ISO 8601, with offset)")
    agent_id: SafeId = Field(default="main", description="the bot identity whose session this is")


class ChatSource(WireModel):
    """Where an inbound chat event came from, as the gateway knows it."""

    channel: Channel = Field(
        description="telegram, discord, slack, whatsapp, ... (lower-cased; tg, wa, dc, msteams resolved)"
    )
    peer_id: SafeId | None = Field(default=None, description="the chat: DM peer or group id (where replies go)")
    user_id: SafeId | None = Field(default=None, description="the person who wrote (defaults to peer_id)")
    account_id: SafeId | None = Field(default=None, description="the bot account that received it")
    thread_id: SafeId | None = Field(default=None, description="thread or topic id")
    message_id: SafeId | None = Field(default=None, description="the platform's message id (replies reply to it)")
    chat_type: ChatType = Field(default="direct", description="group chats always get their own session")

    @model_validator(mode="after")
    def _has_chat(self) -> ChatSource:
        if self.chat_type == "group" and self.peer_id is None:
            raise PydanticCustomError("missing_id", "a group message needs peerId (the group id)")
        if self.peer_id is None and self.user_id is None:
            raise PydanticCustomError("missing_id", "a direct message needs userId or peerId")
        return self


class InboundMessage(EventBase):
    """A user's chat message; text starting with '/' is a chat command."""

    type: Literal["message.inbound"] = "message.inbound"
    source: ChatSource
    text: Text
    sender_name: Annotated[str, StringConstraints(max_length=200)] | None = None


class CommandEvent(EventBase):
    """The chat commands, from tools or admin consoles, on behalf of `source`'s user."""

    type: Literal["command"] = "command"
    source: ChatSource
    command: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_COMMAND_CHARS)]


class CheckpointSave(EventBase):
    type: Literal["checkpoint.save"] = "checkpoint.save"
    source: ChatSource
    name: Name
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None


class CheckpointRestore(EventBase):
    type: Literal["checkpoint.restore"] = "checkpoint.restore"
    source: ChatSource
    checkpoint_id: SafeId


class CheckpointDelete(EventBase):
    type: Literal["checkpoint.delete"] = "checkpoint.delete"
    source: ChatSource
    checkpoint_id: SafeId


class AgentMessage(EventBase):
    """An assistant, tool or tool-result entry from the agent runtime."""

    type: Literal["message.agent"] = "message.agent"
    session_id: SafeId
    role: Literal["assistant", "tool", "tool-result", "system"]
    content: Text | None = None
    tool: Name | None = None
    args: Annotated[dict[str, Any], AfterValidator(bounded_json)] | None = None
    result: Annotated[Any, AfterValidator(bounded_json)] = None
    usage: Usage | None = None
    important: bool = False
    in_reply_to: SafeId | None = Field(
        default=None, description="the inbound event this answers (the turn's inReplyTo)"
    )
    in_reply_to_seq: Seq | None = Field(
        default=None,
        description="the answered entry's seq (the turn's seq): exact where chats of one session reuse ids",
    )


class SummaryProduced(EventBase):
    """A summary of entries from_seq..to_seq made by an external summarizer."""

    type: Literal["summary"] = "summary"
    session_id: SafeId
    from_seq: Seq
    to_seq: Seq
    content: Text


class MarkImportant(EventBase):
    type: Literal["entry.important"] = "entry.important"
    session_id: SafeId
    seq: Seq
    important: bool = True


class ModelChange(EventBase):
    """From tools and admin consoles: set a session's model override (absent or null: the default)."""

    type: Literal["session.model"] = "session.model"
    session_id: SafeId
    model: Name | None = None


class SessionResume(EventBase):
    """From tools and admin consoles: undo a reset by making this archived session active again
    (the one it replaces is archived, and what arrived since is appended at its end)."""

    type: Literal["session.resume"] = "session.resume"
    session_id: SafeId


class SessionResetDue(EventBase):
    """From the scheduler: the session was due for a daily or idle reset at `due_at`."""

    type: Literal["session.reset"] = "session.reset"
    session_id: SafeId
    reason: Literal["daily", "idle"]
    due_at: AwareDatetime


class RetentionDue(EventBase):
    """From the scheduler: the session is past its retention (`enforce` deletes, `warn` reports)."""

    type: Literal["session.retention"] = "session.retention"
    session_id: SafeId
    rule: Literal["max_age", "max_inactive", "max_store_bytes"]
    mode: Literal["enforce", "warn"] = "enforce"


InboundEvent = Annotated[
    InboundMessage
    | CommandEvent
    | CheckpointSave
    | CheckpointRestore
    | CheckpointDelete
    | AgentMessage
    | SummaryProduced
    | MarkImportant
    | ModelChange
    | SessionResume
    | SessionResetDue
    | RetentionDue,
    Field(discriminator="type"),
]
INBOUND_EVENT: TypeAdapter[InboundEvent] = TypeAdapter(InboundEvent)
# Derived from the union itself, so a new event type cannot be forgotten here.
EVENT_TYPES: tuple[str, ...] = tuple(
    str(model.model_fields["type"].default) for model in get_args(get_args(InboundEvent)[0])
)
