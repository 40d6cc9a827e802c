"""Where a reply goes (DeliveryContext) and where a session started (Origin)."""

from __future__ import annotations

from typing import Literal

from schemas.base import WireModel

ChatType = Literal["direct", "group"]

# The complete alias list: gateways spell channels in different ways; dispatchers bind the canonical names.
CHANNEL_ALIASES = {"tg": "telegram", "wa": "whatsapp", "dc": "discord", "msteams": "teams"}


def normalize_channel(channel: str | None) -> str | None:
    """Trimmed, lower-cased, alias resolved; empty becomes absent."""
    if channel is None:
        return None
    lowered = channel.strip().lower()
    return CHANNEL_ALIASES.get(lowered, lowered) or None


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
