"""Inbound events as a gateway in any language writes them: plain camelCase JSON documents.

Tests build the wire form directly (not the pydantic models) so they can also write what the models
would refuse or normalize: re-serialized copies, spaces around ids, hostile values.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

# The complete alias list of the routing-key specification.
CHANNEL_ALIASES = {"tg": "telegram", "wa": "whatsapp", "dc": "discord", "msteams": "teams"}


def source_doc(
    channel: str,
    peer: str,
    *,
    user: str | None = None,
    account: str | None = None,
    thread: str | None = None,
    message_id: str | None = None,
    group: bool = False,
) -> dict[str, Any]:
    doc: dict[str, Any] = {"channel": channel, "peerId": peer, "chatType": "group" if group else "direct"}
    optional = {"userId": user, "accountId": account, "threadId": thread, "messageId": message_id}
    doc.update({name: value for name, value in optional.items() if value is not None})
    return doc


def inbound_doc(event_id: str, source: dict[str, Any], text: str, *, agent: str = "main") -> dict[str, Any]:
    return {
        "version": 1,
        "type": "message.inbound",
        "eventId": event_id,
        "agentId": agent,
        "occurredAt": "2026-03-03T10:00:00Z",
        "source": source,
        "text": text,
    }


def command_doc(event_id: str, source: dict[str, Any], command: str, *, agent: str = "main") -> dict[str, Any]:
    return {
        "version": 1,
        "type": "command",
        "eventId": event_id,
        "agentId": agent,
        "occurredAt": "2026-03-03T10:00:00Z",
        "source": source,
        "command": command,
    }


def agent_doc(
    event_id: str,
    session_id: str,
    content: str,
    *,
    in_reply_to: str | None = None,
    in_reply_to_seq: int | None = None,
    agent: str = "main",
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "version": 1,
        "type": "message.agent",
        "eventId": event_id,
        "agentId": agent,
        "occurredAt": "2026-03-03T10:00:05Z",
        "sessionId": session_id,
        "role": "assistant",
        "content": content,
    }
    if in_reply_to is not None:
        doc["inReplyTo"] = in_reply_to
    if in_reply_to_seq is not None:
        doc["inReplyToSeq"] = in_reply_to_seq
    return doc


def key_part(value: str) -> str:
    """One part of a routing key, by the specification: the trimmed id percent-encoded as UTF-8 with
    uppercase hex, leaving A-Z a-z 0-9 - . _ ~ @ + = as they are."""
    return quote(value.strip(), safe="@+=")  # quote() always leaves letters, digits and "-._~"


def key_of(doc: dict[str, Any]) -> str:
    """The routing key a conforming gateway publishes a chat event with (the chat's ordering key),
    computed from the specification alone, as a gateway in another language does."""
    source = doc["source"]
    channel = str(source["channel"]).strip().lower()
    channel = CHANNEL_ALIASES.get(channel, channel)
    agent = key_part(str(doc.get("agentId", "main")))
    if source.get("chatType") == "group":
        return f"agent:{agent}:{key_part(channel)}:group:{key_part(str(source['peerId']))}"[:255]
    person = str(source.get("userId") or source["peerId"]).strip()
    return f"agent:{agent}:{key_part(channel)}:peer:{key_part(person)}"[:255]  # rule 6: AMQP's 255 bytes


def reserialized(doc: dict[str, Any], *, occurred_at: str = "2026-03-03T10:07:31.250+00:00") -> bytes:
    """The same event as another gateway's retry writes it: keys in reverse order (all levels), a new
    `occurredAt`, spaces around every id and the channel capitalized, and loose JSON whitespace."""

    def padded(key: str, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: padded(k, v) for k, v in reversed(value.items())}
        if key == "channel" and isinstance(value, str):
            return f"  {value.capitalize()} "
        if (key.endswith("Id") or key == "eventId") and isinstance(value, str):
            return f" {value}  "
        return value

    copy = padded("", {**doc, "occurredAt": occurred_at})
    return json.dumps(copy, indent=3, separators=(" , ", " : "), ensure_ascii=False).encode()
