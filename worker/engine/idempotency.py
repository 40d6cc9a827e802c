"""Idempotency keys scoped to where an event comes from, and the fingerprint of what it means.

A chat event's key is (agent, channel, bot account, chat, event id): Telegram's message ids count
per chat, so the same id from another chat is another event. An event addressed to a session is
keyed by (session, event id). Keys join the gateway's id and its scope with a control character,
which no id on the wire may contain, so a key can never be forged from inside an id.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from schemas.delivery import DeliveryContext, normalize_channel
from schemas.events import (
    ChatSource,
    CheckpointDelete,
    CheckpointRestore,
    CheckpointSave,
    CommandEvent,
    InboundEvent,
    InboundMessage,
)
from worker.engine.scope import key_part

SEPARATOR = "\x1f"
CHAT_EVENTS = (InboundMessage, CommandEvent, CheckpointSave, CheckpointRestore, CheckpointDelete)
_MEANINGLESS = {"event_id", "occurred_at", "version"}


def chat_scope(agent_id: str, channel: str | None, account_id: str | None, chat: str | None) -> str:
    """The chat an event came from, as an idempotency scope."""
    parts = (agent_id, normalize_channel(channel) or "", account_id or "", chat or "")
    return "chat:" + ":".join(key_part(part) for part in parts)


def source_scope(agent_id: str, source: ChatSource) -> str:
    return chat_scope(agent_id, source.channel, source.account_id, source.peer_id or source.user_id)


def session_scope(session_id: str) -> str:
    return f"session:{session_id}"


def scoped(event_id: str, scope: str) -> str:
    return f"{event_id}{SEPARATOR}{scope}"


def is_scoped(key: str) -> bool:
    return SEPARATOR in key


def bare_id(key: str) -> str:
    """The event id as its publisher sent it."""
    return key.split(SEPARATOR, 1)[0]


def key_of(event: InboundEvent) -> str:
    """The event's idempotency key: its id within its chat, or within its session."""
    if isinstance(event, CHAT_EVENTS):
        return scoped(event.event_id, source_scope(event.agent_id, event.source))
    return scoped(event.event_id, session_scope(event.session_id))


def fingerprint(event: InboundEvent) -> str:
    """A digest of the event's meaning: its type, source and payload as validated (normalized ids),
    without its id, timestamp or version; key order and whitespace around ids do not change it."""
    if isinstance(event, InboundMessage):  # the usual event: its fields joined, without a dump
        source = event.source
        sender = event.sender_name
        parts = (
            *(event.type, event.agent_id, source.channel, source.peer_id, source.user_id, source.account_id),
            *(source.thread_id, source.message_id, source.chat_type),
            "" if sender is None else f"{len(sender)}:{sender}",  # free text: its length keeps it apart
            event.text,
        )
        text = SEPARATOR.join("" if part is None else part for part in parts)
    else:
        meaning = event.model_dump(mode="json", exclude=_MEANINGLESS, exclude_none=True)
        text = json.dumps(meaning, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def legacy_entry_key(event_id: str, role: str, session_id: str, agent_id: str, delivery: DeliveryContext | None) -> str:
    """The scoped key of an entry an older store wrote under its bare event id.

    A user entry came from a chat event: its delivery holds the chat it came from. Any other entry
    came from an event addressed to its session.
    """
    if is_scoped(event_id):
        return event_id
    if role == "user" and delivery is not None and delivery.to:
        return scoped(event_id, chat_scope(agent_id, delivery.channel, delivery.account_id, delivery.to))
    return scoped(event_id, session_scope(session_id))


# What is stored of the fingerprint of an event that held a secret (it was redacted): 16 bits of
# the digest. Enough to tell a reused id from a redelivery all but once in 65,536, too little to
# confirm a guessed secret (a card number's billion candidates leave some 15,000).
BLURRED = "b:"
_BLURRED_HEX = 4


def blurred(fingerprint: str) -> str:
    return fingerprint if not fingerprint or fingerprint.startswith(BLURRED) else BLURRED + fingerprint[:_BLURRED_HEX]


def same_meaning(stored: str | None, fingerprint: str) -> bool:
    """Whether an event with `fingerprint` means what the event that stored `stored` meant (an
    older record without one, or an event without one, is taken at its word)."""
    if stored is None or not fingerprint:
        return True
    if stored.startswith(BLURRED) or fingerprint.startswith(BLURRED):
        return blurred(stored) == blurred(fingerprint)
    return stored == fingerprint


@dataclass(frozen=True, slots=True)
class Identity:
    """What makes an event itself: its scoped key and the fingerprint of its meaning."""

    key: str
    fingerprint: str

    @property
    def event_id(self) -> str:
        return bare_id(self.key)


def identify(event: InboundEvent) -> Identity:
    return Identity(key_of(event), fingerprint(event))
