"""The worker computes exactly the routing keys of the published test vectors.

The vectors (schemas/vectors/routing-keys.json) were written from docs/reference/routing-keys.md,
not from this code; gateways in other languages test against the same file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.events import ChatSource, InboundMessage
from schemas.topology import MAX_ROUTING_KEY_BYTES, reply_routing_key, routable
from worker.engine.scope import ChatAddress, session_key
from worker.service.announcements import address_of
from worker.service.processor import ordering_key

VECTORS = json.loads((Path(__file__).resolve().parents[2] / "schemas/vectors/routing-keys.json").read_text())


def _event(vector: dict[str, Any]) -> InboundMessage:
    body: dict[str, Any] = {"type": "message.inbound", "eventId": "e-1", "source": vector["source"], "text": "hi"}
    if "agentId" in vector:
        body["agentId"] = vector["agentId"]
    return InboundMessage.model_validate(body)


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_the_ordering_key_of_a_published_event(vector: dict[str, Any]) -> None:
    event = _event(vector)
    assert ordering_key(event.agent_id, event.source) == vector["key"]


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_the_session_key_of_an_untrimmed_address(vector: dict[str, Any]) -> None:
    """session_key normalizes on its own too (the library API passes addresses without the models)."""
    source = vector["source"]
    address = ChatAddress(
        agent_id=vector.get("agentId", "main"),
        channel=source["channel"],
        user_id=source.get("userId"),
        peer_id=source.get("peerId"),
        chat_type=source.get("chatType", "direct"),
    )
    assert routable(session_key("per-channel-peer", address)) == vector["key"]


@pytest.mark.parametrize("case", VECTORS["slots"]["cases"], ids=lambda c: f"{c['scope']}-{c['slot']}")
def test_slot_keys_and_when_an_event_is_forwarded(case: dict[str, Any]) -> None:
    source = ChatSource.model_validate(case["source"])
    slot = session_key(case["scope"], address_of("main", source))
    assert slot == case["slot"]
    assert (slot != ordering_key("main", source)) is case["forwarded"]


@pytest.mark.parametrize("case", VECTORS["invalid"]["cases"], ids=lambda c: c["name"])
def test_sources_without_a_key_are_rejected(case: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        _event({"source": case["source"]})


def test_the_vectors_cover_every_platform_of_the_spec() -> None:
    platforms = {vector["platform"] for vector in VECTORS["vectors"]}
    assert {"telegram", "discord", "slack", "whatsapp", "signal", "matrix", "email", "unicode"} <= platforms
    assert {"separators", "whitespace", "fallback"} <= platforms


def test_the_specifications_python_snippet_computes_every_vector() -> None:
    """The few lines in docs/reference/routing-keys.md are a complete implementation."""
    spec = (Path(__file__).resolve().parents[2] / "docs/reference/routing-keys.md").read_text()
    snippet = spec.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(snippet, namespace)  # our own documentation
    for vector in VECTORS["vectors"]:
        assert namespace["routing_key"](vector.get("agentId"), vector["source"]) == vector["key"], vector["name"]


@pytest.mark.parametrize("channel", ["telegram", "ë" * 200, "チ" * 256, "x" * 256])
def test_a_reply_routing_key_always_fits_amqp(channel: str) -> None:
    key = reply_routing_key(channel, "command-result")
    assert len(key.encode()) <= MAX_ROUTING_KEY_BYTES and key.endswith(".command-result")
    assert channel.startswith(key.removesuffix(".command-result")), "cut at a character boundary"
