"""Inbound bodies -> events, decided on the first delivery: an event, or BadInput with a reason.

Parsing is bounded: pydantic's JSON parser stops at a fixed nesting depth (so no RecursionError
can escape) and free-form values are held to schemas.limits.MAX_JSON_DEPTH. Every rejection names
a reason (the dead-letter header) and says what was wrong and the limit, in words a chat user can
read; where the chat it came from is known, that chat is told.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from schemas.base import describe_errors
from schemas.events import EVENT_TYPES, INBOUND_EVENT, ChatSource, InboundEvent, SafeId

# Where the chat is known, these event types are answered with an error reply as well.
_ANSWERED_TYPES = ("message.inbound", "command")
_SAFE_ID: TypeAdapter[str] = TypeAdapter(SafeId)
_ID_FIELDS = {
    *("eventId", "agentId", "sessionId", "checkpointId", "channel", "peerId", "userId"),
    *("accountId", "threadId", "messageId", "event_id", "agent_id", "session_id", "checkpoint_id"),
    *("peer_id", "user_id", "account_id", "thread_id", "message_id"),
}


@dataclass(frozen=True, slots=True)
class ChatToAnswer:
    """The chat a rejected event came from, and its id as sent (when readable)."""

    agent_id: str
    source: ChatSource
    event_id: str | None


class BadInput(Exception):
    def __init__(self, reason: str, detail: str, chat: ChatToAnswer | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.chat = chat


def decode_body(body: bytes, max_bytes: int) -> InboundEvent:
    if len(body) > max_bytes:
        raise BadInput("oversize", f"event of {len(body):,} bytes is over the limit of {max_bytes:,} bytes")
    try:
        return INBOUND_EVENT.validate_json(body)
    except ValidationError as exc:
        raise _rejection(body, exc) from None


def _rejection(body: bytes, exc: ValidationError) -> BadInput:
    errors = exc.errors()
    if errors and errors[0]["type"] == "json_invalid":
        return _unparsable(body, errors[0]["msg"])
    try:
        raw = json.loads(body)  # parsed fine above, so within the parser's depth: no recursion error
    except ValueError as error:
        return BadInput("invalid-json", f"the event is not JSON: {error}")
    reason, detail = _classify(raw, errors, exc)
    return BadInput(reason, detail, _chat_of(raw))


def _unparsable(body: bytes, message: str) -> BadInput:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return BadInput("invalid-utf8", f"the event is not valid UTF-8 (byte {exc.start})")
    if "recursion limit" in message:
        return BadInput("too-deep", "the event nests too deeply to be read")
    return BadInput("invalid-json", f"the event is not JSON: {message.removeprefix('Invalid JSON: ')}")


def _classify(raw: Any, errors: list[ErrorDetails], exc: ValidationError) -> tuple[str, str]:
    """The most telling reason among the errors, and one line that says what is wrong."""
    first = errors[0]
    kind = first["type"]
    if kind in ("union_tag_not_found", "union_tag_invalid"):
        got = raw.get("type") if isinstance(raw, dict) else None
        return "unknown-type", f"unknown event type {str(got)[:80]!r}; known: {', '.join(EVENT_TYPES)}"
    for error in errors:
        found = _specific(error)
        if found is not None:
            return found
    return "schema", describe_errors(exc, where="event")


def _specific(error: ErrorDetails) -> tuple[str, str] | None:
    kind, field, ctx = error["type"], _field(error), error.get("ctx") or {}
    if field == "version" and kind == "literal_error":
        return "unsupported-version", f"unsupported contract version {error['input']!r}; this worker reads version 1"
    if kind == "string_too_long":
        what = "message" if field in ("text", "content") else field
        return "too-long", f"{what} too long: {len(error['input']):,} characters; the limit is {ctx['max_length']:,}"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        bound = next(iter(ctx.values()))
        return "out-of-range", f"{field} {error['input']} is out of range (limit {bound:,})"
    if kind == "too_deep":
        return "too-deep", f"{field} is {error['msg']}"
    if kind == "missing_id" or (kind in ("missing", "string_too_short") and field in _ID_FIELDS):
        return "missing-id", error["msg"] if kind == "missing_id" else f"{field} is required and must not be empty"
    return None


def _field(error: ErrorDetails) -> str:
    """The offending field's name (the last named part of its location)."""
    names = [part for part in error["loc"][1:] if isinstance(part, str)]
    return names[-1] if names else "event"


def _chat_of(raw: Any) -> ChatToAnswer | None:
    """The chat to tell, for a user message or command whose source and ids are readable."""
    if not isinstance(raw, dict) or raw.get("type") not in _ANSWERED_TYPES:
        return None
    try:
        source = ChatSource.model_validate(raw.get("source"))
    except ValidationError:
        return None
    agent, event_id = _id(raw.get("agentId", raw.get("agent_id", "main"))), _id(raw.get("eventId", raw.get("event_id")))
    return None if agent is None else ChatToAnswer(agent, source, event_id)


def _id(value: Any) -> str | None:
    try:
        return _SAFE_ID.validate_python(value)
    except ValidationError:
        return None
