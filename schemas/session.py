"""The session document: the session entry (key, agent, channel, last route, delivery context,
counters, model, origin) plus id, status, activity, usage and view."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from schemas.base import WireModel
from schemas.delivery import DeliveryContext, Origin

SessionStatus = Literal["active", "archived"]
ArchiveReason = Literal["new", "reset", "daily", "idle", "superseded", "scope-change", "resumed-other"]


class Segment(WireModel):
    """An inclusive range of transcript sequence numbers; `end` None means open-ended."""

    start: int = Field(ge=1)
    end: int | None = None


class ModelConfig(WireModel):
    provider: str | None = None
    name: str
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)


class SessionEntry(WireModel):
    id: str
    key: str
    agent_id: str
    generation: int = Field(ge=1)
    status: SessionStatus = "active"
    archived_reason: ArchiveReason | None = None
    archived_at: datetime | None = None
    # The event (its scoped key) whose handling archived it: a retry of that event, after a fault
    # cut it short, finds the reset it made and still announces it. Stored, never shown: the key
    # names the chat that sent the event (an admin's, for a scope change).
    archived_by: str | None = Field(default=None, exclude=True)
    channel: str | None = None
    last_channel: str | None = None
    last_to: str | None = None
    last_account_id: str | None = None
    last_thread_id: str | None = None
    delivery_context: DeliveryContext | None = None
    created_at: datetime
    updated_at: datetime
    last_activity_at: datetime
    message_count: int = 0
    last_seq: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    # Transcript bytes as stored (sealed payloads): what a store budget (retention) counts.
    stored_bytes: int = 0
    model: str | ModelConfig | None = None
    origin: Origin | None = None
    # The event that opened this session (a /new, a reset, or the message that found the old
    # one due): a redelivered event that finds its own session in place changes nothing.
    opened_by: str | None = None
    # Bumped by every write to the session document: appends and view changes are guarded by it,
    # so a copy cached by a worker can never overwrite what another process changed.
    version: int = 0
    # Which sequence ranges are visible: clear and checkpoint restore edit this list instead of
    # copying or deleting transcript entries, so their cost does not grow with the transcript.
    view: tuple[Segment, ...] = (Segment(start=1),)


class SessionPage(WireModel):
    items: tuple[SessionEntry, ...]
    next_cursor: str | None = None
