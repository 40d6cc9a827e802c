"""Events the workers publish: reply routing, turns for the agent runtime, notices, summarize requests."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from schemas.base import WireModel, utc_now
from schemas.delivery import DeliveryContext

ReplyKind = Literal["command-result", "assistant", "notice", "error"]
NoticeKind = Literal["session-reset", "session-resumed", "retention-warning", "retention-deleted", "scope-change"]


class ReplyEvent(WireModel):
    """Text to deliver, and exactly where: dispatchers never guess a route."""

    version: Literal[1] = 1
    type: Literal["reply"] = "reply"
    event_id: str
    in_reply_to: str = Field(description="event_id of the event this answers")
    kind: ReplyKind
    agent_id: str
    session_id: str | None = None
    text: str
    delivery: DeliveryContext
    occurred_at: datetime = Field(default_factory=utc_now)


class TurnEvent(WireModel):
    """A user message was stored: the agent runtime's cue to answer it."""

    version: Literal[1] = 1
    type: Literal["turn"] = "turn"
    event_id: str
    in_reply_to: str
    agent_id: str
    session_id: str
    seq: int
    text: str
    delivery: DeliveryContext
    ordering_key: str = Field(description="routing key to publish this session's agent messages with")
    model: str | None = Field(default=None, description="the session's model override; absent: the agent's default")
    occurred_at: datetime = Field(default_factory=utc_now)


class NoticeEvent(WireModel):
    """Something happened to a session (reset, retention) that dispatchers may deliver or ignore."""

    version: Literal[1] = 1
    type: Literal["notice"] = "notice"
    event_id: str
    in_reply_to: str
    kind: NoticeKind
    agent_id: str
    session_id: str
    text: str
    delivery: DeliveryContext | None = None
    occurred_at: datetime = Field(default_factory=utc_now)


class SummarizeRequest(WireModel):
    """Entries from_seq..to_seq overflowed a context window and no summary covers them yet."""

    version: Literal[1] = 1
    type: Literal["summarize.request"] = "summarize.request"
    event_id: str
    agent_id: str
    session_id: str
    from_seq: int
    to_seq: int
    ordering_key: str
    occurred_at: datetime = Field(default_factory=utc_now)


OutboundEvent = ReplyEvent | TurnEvent | NoticeEvent | SummarizeRequest
