"""Hostile message bodies, each with the dead-letter reasons it may get.

Every body is decided on its first delivery: dead-lettered at once with one of its reasons (or
applied, where `reasons` includes "ok"). `error_reply` names the limit an `error` reply to the chat
must state, for bodies whose chat is known (a message or command with a parseable source).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from tests.support.wire import agent_doc, command_doc, inbound_doc, source_doc

# The dead-letter reasons of the contract (header x-sessions-dead-reason).
REASONS = frozenset(
    {
        "oversize",
        "invalid-utf8",
        "invalid-json",
        "too-deep",
        "unknown-type",
        "unsupported-version",
        "too-long",
        "out-of-range",
        "missing-id",
        "schema",
        "event-id-conflict",
    }
)
MAX_DEPTH = 32  # free-form values (a tool's args and result)
PARSER_DEPTH = 256  # no JSON parser the worker uses reads deeper than this
TEXT_LIMIT = 262_144
COMMAND_LIMIT = 10_000
MAX_PAYLOAD_BYTES = 1 << 20
SAFE_INT = 2**53 - 1
CHAT = source_doc("telegram", "-1001234567890", user="42", message_id="m-1", group=True)


@dataclass(frozen=True, repr=False)
class Hostile:
    label: str
    body: bytes
    reasons: frozenset[str]
    error_reply: tuple[str, ...] = ()  # texts the chat's `error` reply must contain (the limit first)

    def __repr__(self) -> str:  # hypothesis prints examples: keep megabytes out of the report
        return f"Hostile({self.label!r}, {len(self.body)} bytes, {sorted(self.reasons)})"


def _body(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode()


def _nested(depth: int, kind: str) -> str:
    if kind == "list":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


@st.composite
def too_deep(draw: st.DrawFn) -> Hostile:
    depth = draw(st.sampled_from([MAX_DEPTH + 2, 100, 1000, 5000]) | st.integers(MAX_DEPTH + 2, 6000))
    kind = draw(st.sampled_from(["list", "object"]))
    where = draw(st.sampled_from(["top", "text", "source", "args"]))
    nested = _nested(depth, kind)
    if where == "top":
        body = nested
    elif where == "args":
        doc = agent_doc("deep-1", "s_0000000000000000", "x")
        body = _body(doc)[:-1].decode() + f', "args": {{"deep": {nested}}}}}'
    else:
        doc = inbound_doc("deep-1", CHAT, "x")
        field = '"text": "x"' if where == "text" else '"source": ' + json.dumps(CHAT)
        body = _body(doc).decode().replace(field, f'"{where}": {nested}')
    # Free-form values (a tool's args) are held to 32 levels; elsewhere nesting is cut where the
    # parser stops reading (about 200 levels), and anything shallower is a plain schema violation.
    # A shallower object at the top is an object without a type.
    # A source that is only a nest lacks its ids.
    shallow = {("top", "object"): "unknown-type", ("source", "object"): "missing-id"}.get((where, kind), "schema")
    reasons = {"too-deep"} if where == "args" or depth > PARSER_DEPTH else {"too-deep", shallow}
    return Hostile(f"nested {depth} deep ({kind}, {where})", body.encode(), frozenset(reasons))


@st.composite
def invalid_utf8(draw: st.DrawFn) -> Hostile:
    bad = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80", b"\xe2\x82"]))
    before = draw(st.text(alphabet="abc xyz", max_size=8)).encode()
    body = _body(inbound_doc("utf-1", CHAT, "@@TEXT@@")).replace(b"@@TEXT@@", before + bad + b"tail")
    return Hostile(f"invalid UTF-8 {bad!r}", body, frozenset({"invalid-utf8"}))


@st.composite
def out_of_range(draw: st.DrawFn) -> Hostile:
    value = draw(st.sampled_from([SAFE_INT + 1, 2**64, 10**400, -1, -(2**63)]) | st.integers(min_value=SAFE_INT + 1))
    where = draw(st.sampled_from(["seq", "usage", "summary"]))
    if where == "seq":
        doc: dict[str, Any] = {"type": "entry.important", "eventId": "num-1", "sessionId": "s_1", "seq": value}
    elif where == "usage":
        doc = {**agent_doc("num-1", "s_1", "x"), "usage": {"inputTokens": value, "outputTokens": 1}}
    else:
        doc = {"type": "summary", "eventId": "num-1", "sessionId": "s_1", "fromSeq": 1, "toSeq": value, "content": "s"}
    reasons = {"out-of-range"}
    if len(str(value)) > 4000:  # past Python's int-parsing digit limit: also fair to call it bad JSON
        reasons.add("invalid-json")
    return Hostile(f"{where} = {str(value)[:30]}", _body(doc), frozenset(reasons))


@st.composite
def too_long(draw: st.DrawFn) -> Hostile:
    if draw(st.booleans()):
        length = draw(st.sampled_from([TEXT_LIMIT + 1, 300_000]) | st.integers(TEXT_LIMIT + 1, 400_000))
        as_command = draw(st.booleans())
        text = ("/" if as_command else "") + "x" * (length - int(as_command))
        body = _body(inbound_doc("long-1", CHAT, text))
        return Hostile(f"text of {length:,}", body, frozenset({"too-long"}), (f"{TEXT_LIMIT:,}", f"{length:,}"))
    length = draw(st.sampled_from([COMMAND_LIMIT + 1]) | st.integers(COMMAND_LIMIT + 1, 50_000))
    body = _body(command_doc("long-1", CHAT, "/history " + "y" * (length - 9)))
    return Hostile(f"command of {length:,}", body, frozenset({"too-long"}), (f"{COMMAND_LIMIT:,}", f"{length:,}"))


@st.composite
def oversize(draw: st.DrawFn) -> Hostile:
    extra = draw(st.integers(1, 200_000))
    padding = "z" * (MAX_PAYLOAD_BYTES + extra)
    return Hostile("over the payload limit", _body(inbound_doc("big-1", CHAT, padding)), frozenset({"oversize"}))


MISSING_IDS: dict[str, dict[str, Any]] = {
    "no eventId": {k: v for k, v in inbound_doc("x", CHAT, "hi").items() if k != "eventId"},
    "empty eventId": inbound_doc("", CHAT, "hi"),
    "blank eventId": inbound_doc("   ", CHAT, "hi"),
    "group without peerId": inbound_doc("g-1", {"channel": "telegram", "chatType": "group", "userId": "42"}, "hi"),
    "direct without user or peer": inbound_doc("d-1", {"channel": "telegram", "chatType": "direct"}, "hi"),
    "empty channel": inbound_doc("c-1", {**CHAT, "channel": " "}, "hi"),
    "agent message without sessionId": {k: v for k, v in agent_doc("a-1", "s", "x").items() if k != "sessionId"},
    "checkpoint restore without id": {"type": "checkpoint.restore", "eventId": "r-1", "source": CHAT},
}
UNKNOWN_TYPES: list[Any] = ["teleport", "", "message.outbound", 5, None, ["command"], {"$gt": ""}]
VERSIONS: list[Any] = [0, 2, 99, -1, SAFE_INT]

missing_id = st.sampled_from(sorted(MISSING_IDS)).map(
    lambda label: Hostile(label, _body(MISSING_IDS[label]), frozenset({"missing-id"}))
)
unknown_type = st.sampled_from(UNKNOWN_TYPES).map(
    lambda kind: Hostile(
        f"type {kind!r}", _body({**inbound_doc("t-1", CHAT, "hi"), "type": kind}), frozenset({"unknown-type"})
    )
)
unsupported_version = st.sampled_from(VERSIONS).map(
    lambda version: Hostile(
        f"version {version}",
        _body({**inbound_doc("v-1", CHAT, "hi"), "version": version}),
        frozenset({"unsupported-version"}),
    )
)
not_json = st.sampled_from(
    [b"{not json", b"", b"   ", b'{"type": "command"', b"\x00\x01", b"NaN", b'"just a string"']
).map(lambda body: Hostile(f"not an event {body[:12]!r}", body, frozenset({"invalid-json", "schema"})))

# Everything above, plus what a small edit of a good event makes; oversize ones rarely (they are big).
hostile_bodies = st.one_of(
    too_deep(), invalid_utf8(), out_of_range(), too_long(), missing_id, unknown_type, unsupported_version, not_json
)
