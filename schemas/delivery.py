"""Where a reply goes (seed 003's DeliveryContext) and where a session started (Origin)."""

from __future__ import annotations

from typing import Literal

from schemas.base import WireModel

ChatType = Literal["direct", "group"]


class DeliveryContext(WireModel):
    channel: str | None = None
    to: str | None = None
    account_id: str | None = None
    thread_id: str | None = None
    reply_to_id: str | None = None


class Origin(WireModel):
    """The first message's context: who opened the session, from where."""

    channel: str | None = None
    user_id: str | None = None
    peer_id: str | None = None
    account_id: str | None = None
    thread_id: str | None = None
    chat_type: ChatType = "direct"
