"""Map an inbound chat address to a session key (the slot) under the agent's scope."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from urllib.parse import quote

from schemas import SCOPES, AgentSettings, ChatType, DeliveryContext, Origin, Scope
from schemas.delivery import normalize_channel
from worker.engine.delivery import clean_id
from worker.errors import InvalidArgument, InvalidScope

# Chat aliases used by `/session scope main|peer|channel`.
SCOPE_ALIASES: dict[str, Scope] = {
    "main": "main",
    "peer": "per-peer",
    "per-peer": "per-peer",
    "channel": "per-channel-peer",
    "per-channel-peer": "per-channel-peer",
    "account": "per-account-channel-peer",
    "per-account-channel-peer": "per-account-channel-peer",
}


def parse_scope(text: str) -> Scope:
    scope = SCOPE_ALIASES.get(text.strip().lower())
    if scope is None:
        allowed = ", ".join(SCOPES)
        raise InvalidScope(f"unknown scope {text!r}: use one of {allowed} (or main, peer, channel, account)")
    return scope


@dataclass(frozen=True, slots=True)
class ChatAddress:
    """Who wrote, where: what a gateway knows about an inbound message.

    `user_id` is the person; `peer_id` the chat the message came from (the DM peer or the
    group); in a direct chat they are usually the same and either may be given alone.
    """

    agent_id: str = "main"
    channel: str | None = None
    user_id: str | None = None
    peer_id: str | None = None
    account_id: str | None = None
    thread_id: str | None = None
    message_id: str | None = None
    chat_type: ChatType = "direct"

    @property
    def person(self) -> str | None:
        return self.user_id or self.peer_id

    @property
    def chat(self) -> str | None:
        return self.peer_id or self.user_id

    def delivery(self) -> DeliveryContext:
        return DeliveryContext(
            channel=normalize_channel(self.channel),
            to=clean_id(self.chat),
            account_id=clean_id(self.account_id),
            thread_id=clean_id(self.thread_id),
            reply_to_id=clean_id(self.message_id),
        )

    def origin(self) -> Origin:
        return Origin(
            channel=normalize_channel(self.channel),
            user_id=self.user_id,
            peer_id=self.peer_id,
            account_id=self.account_id,
            thread_id=self.thread_id,
            chat_type=self.chat_type,
        )


# What quote() below leaves as it is: its always-safe characters plus ours.
_UNESCAPED = re.compile(r"[A-Za-z0-9_.~@+=-]*")


def key_part(value: str) -> str:
    # Ids may contain ':' (Matrix, Slack); escape so keys never collide across parts.
    text = value.strip()
    if _UNESCAPED.fullmatch(text):
        return text  # the usual id: nothing to escape, and quote() is slow (this runs per message)
    return quote(text, safe="@.+-_=")


def session_key(scope: Scope, address: ChatAddress, *, identity: str | None = None) -> str:
    """The slot's key; `identity` (a linked person, under per-peer scope) stands for the user."""
    return _slot_key(
        Chat(scope, address.agent_id, normalize_channel(address.channel), address.chat_type, address.person),
        address.chat,
        address.account_id,
        identity if scope == "per-peer" else None,
    )


def slot_key(settings: AgentSettings, address: ChatAddress) -> str:
    """The key of the address's slot under the agent's scope and identity links."""
    channel = normalize_channel(address.channel)
    return session_key(settings.scope, address, identity=settings.identity_of(channel, address.person))


def key_fits(scope: Scope, key: str) -> bool:
    """Whether a slot key has the form `scope` gives keys (groups fit every scope but the
    per-account one, which keys groups per bot account too). Parts are percent-encoded, so
    splitting on ':' is exact."""
    parts = key.split(":")[2:]  # after "agent:<agent>"
    per_account = len(parts) >= 3 and parts[1] == "account"
    if "group" in parts[-2:-1]:
        return per_account == (scope == "per-account-channel-peer")
    form: Scope = "per-channel-peer"
    if parts == ["main"]:
        form = "main"
    elif parts[0] in ("peer", "identity"):
        form = "per-peer"
    elif per_account:
        form = "per-account-channel-peer"
    return form == scope


@dataclass(frozen=True, slots=True)
class Chat:
    scope: Scope
    agent_id: str
    channel: str | None
    chat_type: ChatType
    person: str | None


# Every event computes its slot's key (twice): remembered for the chats seen lately.
@functools.lru_cache(maxsize=16_384)
def _slot_key(chat: Chat, group: str | None, account: str | None, identity: str | None) -> str:
    agent, channel, scope = key_part(chat.agent_id), chat.channel, chat.scope
    bot = f":account:{key_part(account or '')}" if scope == "per-account-channel-peer" else ""
    if chat.chat_type == "group":
        if not channel or not group:
            raise InvalidArgument("a group message needs a channel and a peer_id (the group id)")
        return f"agent:{agent}:{key_part(channel)}{bot}:group:{key_part(group)}"
    if scope == "main":
        return f"agent:{agent}:main"
    if identity is not None:
        return f"agent:{agent}:identity:{key_part(identity)}"
    if not chat.person:
        raise InvalidArgument(f"scope {scope} needs a user_id or peer_id to find the session")
    if scope == "per-peer":
        return f"agent:{agent}:peer:{key_part(chat.person)}"
    if not channel:
        raise InvalidArgument(f"scope {scope} needs a channel_id to find the session")
    return f"agent:{agent}:{key_part(channel)}{bot}:peer:{key_part(chat.person)}"
