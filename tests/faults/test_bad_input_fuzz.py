"""Bad input, fuzzed: every case is dead-lettered with a reason or answered clearly; nothing raises."""

from __future__ import annotations

import json
from typing import Any, cast

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.topology import BAD_INPUT_REASONS
from tests.support.fakes import Delivery
from worker.amqp.consumer import BadInput, decode

REASONS = set(BAD_INPUT_REASONS)
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
        # Whatever got through has plain string ids, however they look: values, never operators.
        for value in (event.event_id, event.agent_id, getattr(event, "session_id", "x")):
            assert isinstance(value, str) and value == value.strip() and "\x00" not in value


def test_known_hostile_inputs() -> None:
    cases = {
        b"{not json": "invalid-json",
        b"\xff\xfe\x00": "invalid-utf8",
        b"[]": "schema",
        json.dumps(
            {"type": "message.inbound", "eventId": {"$gt": ""}, "source": {"channel": "x", "peerId": "1"}, "text": ""}
        ).encode(): "schema",
        json.dumps({"type": "message.inbound", "eventId": "$where", "source": {"channel": "x"}, "text": ""}).encode(): (
            "missing-id"
        ),
        json.dumps(
            {"type": "message.inbound", "eventId": "$where", "source": {"channel": "x", "peerId": "$gt"}, "text": ""}
        ).encode(): "ok",
        json.dumps(
            {"type": "message.inbound", "eventId": "a\u0000", "source": {"channel": "x", "peerId": "1"}, "text": ""}
        ).encode(): ("schema"),
        json.dumps(
            {
                "type": "message.inbound",
                "eventId": "e1",
                "source": {"channel": "x", "peerId": "a.b"},
                "text": "",
                "extra": 1,
            }
        ).encode(): "schema",
        json.dumps({"type": "teleport", "eventId": "e1"}).encode(): "unknown-type",
        b'{"type": "message.inbound", "text": "' + b"x" * 5000 + b'"}': "oversize",
        json.dumps(
            {
                "type": "message.inbound",
                "eventId": "e1",
                "source": {"channel": "x", "peerId": "1"},
                "text": "\u202e\U0001f600\x00",
            }
        ).encode(): "ok",
    }
    assert {body: _decode(body) for body in cases} == cases
