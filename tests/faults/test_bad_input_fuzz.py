"""Bad input, fuzzed: every case is dead-lettered with a reason or answered clearly; nothing raises.

Hostile bodies (deep nesting, invalid UTF-8, huge numbers, oversize text, missing ids, unknown types
and versions) go through the worker's event handler: each is decided on its first delivery, with no
exception escaping and no retry, and the chat gets an `error` reply naming the limit where it has one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
import time
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.topology import BAD_INPUT_REASONS
from tests.support.fakes import Delivery, RecordingPublisher, handler_for
from tests.support.hostile import CHAT, MAX_PAYLOAD_BYTES, REASONS, Hostile, hostile_bodies, oversize
from worker import create_session_manager
from worker.amqp.consumer import BadInput, decode
from worker.engine.tokens import CharRatioCounter

OPERATORS = [{"$gt": ""}, {"$where": "sleep(1000)"}, {"$ne": None}, "$gt", "a.b.c", "$where", {"a.b": 1}, ["$in"]]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text() | st.sampled_from(OPERATORS),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
event_types = st.sampled_from(["message.inbound", "command", "checkpoint.save", "message.agent", "summary", "nope", ""])
shaped = st.fixed_dictionaries(
    {"type": event_types, "eventId": json_values},
    optional={
        "source": json_values,
        "text": json_values,
        "agentId": json_values,
        "sessionId": json_values,
        "extra.field": json_values,
        "$where": json_values,
    },
)


def _decode(body: bytes) -> str:
    """'ok' or the dead-letter reason; anything else escaping is a bug."""
    try:
        decode(cast(Any, Delivery(body)), 4096)
    except BadInput as bad:
        assert bad.reason in REASONS and bad.detail
        return bad.reason
    return "ok"


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=600) | st.text(max_size=600).map(str.encode))
def test_arbitrary_bytes_are_rejected_with_a_reason(body: bytes) -> None:
    assert _decode(body) in REASONS | {"ok"}


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(shaped)
def test_shaped_documents_never_let_an_operator_through(doc: dict[str, Any]) -> None:
    body = json.dumps(doc).encode()
    verdict = _decode(body)
    if verdict == "ok":
        event = decode(cast(Any, Delivery(body)), 4096)
        # Whatever got through has plain string ids (an operator-like "$gt" is just text): trimmed,
        # 1..256 characters, no control characters, never a document that could act as an operator.
        for value in (event.event_id, event.agent_id, getattr(event, "session_id", "x")):
            assert isinstance(value, str) and 1 <= len(value) <= 256 and value == value.strip()
            assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in value)


def test_the_reasons_are_the_documented_ones() -> None:
    assert set(BAD_INPUT_REASONS) | {"event-id-conflict"} == REASONS


def test_known_hostile_inputs() -> None:
    chat = {"channel": "x", "peerId": "p1"}
    cases = {
        b"{not json": "invalid-json",
        b"\xff\xfe\x00": "invalid-utf8",
        b"[]": "schema",
        json.dumps({"type": "message.inbound", "eventId": {"$gt": ""}, "source": chat, "text": ""}).encode(): "schema",
        # An operator-like id is a plain string: accepted, and never used as an operator.
        json.dumps({"type": "message.inbound", "eventId": "$where", "source": chat, "text": ""}).encode(): "ok",
        json.dumps({"type": "message.inbound", "eventId": "$where", "source": {"channel": "x"}, "text": ""}).encode(): (
            "missing-id"
        ),
        json.dumps(
            {"type": "message.inbound", "eventId": "$where", "source": {**chat, "peerId": "$gt"}, "text": ""}
        ).encode(): "ok",
        json.dumps({"type": "message.inbound", "eventId": "a\u0000", "source": chat, "text": ""}).encode(): "schema",
        json.dumps(
            {"type": "message.inbound", "eventId": "e1", "source": {**chat, "peerId": "a.b"}, "text": "", "extra": 1}
        ).encode(): "schema",
        json.dumps({"type": "teleport", "eventId": "e1"}).encode(): "unknown-type",
        b'{"type": "message.inbound", "text": "' + b"x" * 5000 + b'"}': "oversize",
        json.dumps(
            {"type": "message.inbound", "eventId": "e1", "source": chat, "text": "\u202e\U0001f600\x00"}
        ).encode(): "ok",
        b"[" * 1000 + b"]" * 1000: "too-deep",
    }
    assert {body[:40]: _decode(body) for body in cases} == {body[:40]: verdict for body, verdict in cases.items()}


async def _handle_once(hostile: Hostile, caplog: pytest.LogCaptureFixture) -> RecordingPublisher:
    """One delivery of `hostile` through a fresh worker handler; checks it was decided right then."""
    folder = tempfile.mkdtemp(prefix="fuzz")
    manager = create_session_manager(db_path=f"{folder}/s.db", token_counter=CharRatioCounter())
    await manager.open()
    publisher = RecordingPublisher()
    handler = handler_for(manager, publisher, max_payload_bytes=MAX_PAYLOAD_BYTES)
    delivery = Delivery(hostile.body, routing_key="agent:main:telegram:group:-1001234567890", message_id="hostile")
    caplog.clear()
    began = time.perf_counter()
    try:
        await asyncio.wait_for(handler.handle(cast(Any, delivery)), 10)
    finally:
        await manager.close()
    took = time.perf_counter() - began
    bugs = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert bugs == [], f"{hostile}: handled as a crash: {bugs[:1]}"
    assert delivery.acks == 1, f"{hostile}: not settled on its first delivery"
    assert [reason for reason, _ in publisher.dead] in ([reason] for reason in hostile.reasons), (
        f"{hostile}: dead-lettered as {publisher.dead}"
    )
    assert took < 1.0, f"{hostile}: took {took:.2f}s (retried?)"
    assert all(not outcome.turns for outcome in publisher.outcomes), f"{hostile}: was stored"
    return publisher


def _check_error_reply(hostile: Hostile, publisher: RecordingPublisher) -> None:
    if not hostile.error_reply:
        return
    replies = [reply for outcome in publisher.outcomes for reply in outcome.replies]
    assert len(replies) == 1, f"{hostile}: the chat gets one error reply, got {replies}"
    [reply] = replies
    assert reply.kind == "error" and reply.in_reply_to == "long-1"
    assert (reply.delivery.channel, reply.delivery.to) == (CHAT["channel"], CHAT["peerId"])
    assert reply.delivery.reply_to_id == CHAT["messageId"]
    for needed in hostile.error_reply:
        assert needed in reply.text, f"{hostile}: {needed!r} missing from {reply.text!r}"


@settings(
    max_examples=250,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
    deadline=None,
)
@given(hostile=hostile_bodies)
async def test_hostile_bodies_are_decided_on_their_first_delivery(
    hostile: Hostile, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    publisher = await _handle_once(hostile, caplog)
    _check_error_reply(hostile, publisher)


@settings(
    max_examples=4, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture], deadline=None
)
@given(hostile=oversize())
async def test_bodies_over_the_payload_limit_are_dead_lettered_at_once(
    hostile: Hostile, caplog: pytest.LogCaptureFixture
) -> None:
    await _handle_once(hostile, caplog)


def test_nesting_to_the_limit_still_decodes() -> None:
    """The depth bound rejects only what is deeper than documented: 32 levels of args are fine."""
    nested: Any = 1
    for _ in range(29):  # event object -> args -> 29 more levels: 31 in all
        nested = {"a": nested}
    doc = {"type": "message.agent", "eventId": "ok-1", "sessionId": "s_1", "role": "tool", "args": {"deep": nested}}
    assert _decode(json.dumps(doc).encode()) == "ok"
