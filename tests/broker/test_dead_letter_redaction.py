"""A rejected event is kept for replay in the dead-letter queue: the secrets it carried are redacted
there as storing it would have redacted them, and a body with none is kept byte for byte."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from schemas.topology import HEADER_REDACTED
from tests.support.broker import BrokerHarness
from tests.support.raw_gateway import RawGateway, raw_gateway
from tests.support.secret_corpus import SECRETS
from tests.support.wire import inbound_doc, key_of, source_doc

pytestmark = pytest.mark.broker
CHAT = source_doc("telegram", "42", user="42")
KEY = key_of(inbound_doc("k", CHAT, ""))


@pytest.fixture
async def raw(harness: BrokerHarness) -> AsyncIterator[RawGateway]:
    await harness.start_worker()
    async with raw_gateway(harness.url, harness.names) as gateway:
        yield gateway


async def _dead_letter_of(harness: BrokerHarness, raw: RawGateway, body: bytes) -> tuple[bytes, dict[str, object]]:
    before = len(harness.dead.bodies)
    await raw.publish(body, KEY, message_id="rejected")
    await harness.dead.wait_count(before + 1, timeout=10)
    return harness.dead.bodies[before], harness.dead.headers[before]


@pytest.mark.parametrize(
    ("kind", "secret", "message"), SECRETS, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(SECRETS)]
)
async def test_a_rejected_messages_secret_is_not_kept_in_its_dead_letter(
    harness: BrokerHarness, raw: RawGateway, kind: str, secret: str, message: str
) -> None:
    # No source: rejected (missing-id) on its first delivery, with the secret in its text.
    body = json.dumps({"type": "message.inbound", "eventId": "no-source", "text": message.format(secret)}).encode()
    kept, headers = await _dead_letter_of(harness, raw, body)
    assert secret not in kept.decode(), "the secret survived in the dead letter"
    assert f"[redacted:{kind}]" in json.loads(kept)["text"]
    assert kind in str(headers[HEADER_REDACTED]).split(",")


async def test_a_body_that_is_not_json_is_redacted_as_text(harness: BrokerHarness, raw: RawGateway) -> None:
    kind, secret, _ = SECRETS[0]
    body = b'{"type": "message.inbound", "text": "my key ' + secret.encode() + b'" \xff broken'
    kept, headers = await _dead_letter_of(harness, raw, body)
    assert secret.encode() not in kept and f"[redacted:{kind}]".encode() in kept
    assert kept.endswith(b"\xff broken"), "bytes that are not UTF-8 are kept as they were"
    assert headers[HEADER_REDACTED] == kind


async def test_a_dead_letter_without_secrets_is_kept_byte_for_byte(harness: BrokerHarness, raw: RawGateway) -> None:
    body = b'{ "type" : "message.inbound",  "eventId": "plain", "text": "order 4711, no secrets here" }'
    kept, headers = await _dead_letter_of(harness, raw, body)
    assert kept == body and HEADER_REDACTED not in headers


async def test_an_agent_without_redaction_keeps_its_dead_letters_as_sent(
    harness: BrokerHarness, raw: RawGateway
) -> None:
    await harness.manager.set_redaction(enabled=False, agent_id="raw-agent")
    _, secret, message = SECRETS[0]
    body = json.dumps(
        {"type": "message.inbound", "agentId": "raw-agent", "eventId": "e", "text": message.format(secret)}
    )
    kept, headers = await _dead_letter_of(harness, raw, body.encode())
    assert kept == body.encode() and HEADER_REDACTED not in headers
