"""Hostile bodies through the real broker: each is decided on its first delivery, and a good event
on the same shard right after is answered within a second."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings

from tests.support.broker import BrokerHarness
from tests.support.hostile import CHAT, MAX_PAYLOAD_BYTES, REASONS, Hostile, hostile_bodies
from tests.support.raw_gateway import RawGateway, raw_gateway
from tests.support.wire import inbound_doc, key_of

pytestmark = pytest.mark.broker
KEY = key_of(inbound_doc("k", CHAT, ""))
ANSWER_WITHIN = 1.0
_good_ids = itertools.count()


@pytest.fixture
async def raw(harness: BrokerHarness) -> AsyncIterator[RawGateway]:
    await harness.start_worker(max_payload_bytes=MAX_PAYLOAD_BYTES)
    async with raw_gateway(harness.url, harness.names) as gateway:
        yield gateway


async def _good_event_answered(harness: BrokerHarness, raw: RawGateway) -> float:
    """Publish a good message on the hostile bodies' shard; seconds until its turn arrived."""
    event_id = f"good-{next(_good_ids)}"
    await raw.publish(inbound_doc(event_id, CHAT, "a good message"), KEY)
    began = time.monotonic()
    await harness.turns.wait_for(event_id, timeout=10)
    return time.monotonic() - began


@settings(
    max_examples=12,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
    deadline=None,
)
@given(hostile=hostile_bodies)
async def test_a_good_event_after_a_hostile_one_is_answered_within_a_second(
    harness: BrokerHarness, raw: RawGateway, hostile: Hostile
) -> None:
    dead_before = len(harness.dead.items)
    await raw.publish(hostile.body, KEY, message_id="hostile")
    took = await _good_event_answered(harness, raw)
    assert took < ANSWER_WITHIN, f"{hostile}: the good event waited {took:.2f}s"
    await harness.dead.wait_count(dead_before + 1, timeout=5)
    assert len(harness.dead.items) == dead_before + 1, f"{hostile}: dead-lettered more than once"
    # Which reason exactly is the handler fuzz's to check; here: a reason of the contract, not a crash.
    assert harness.dead.routing_keys[-1] in REASONS, f"{hostile}: {harness.dead.routing_keys[-1]}"
    if hostile.error_reply:
        [reply] = await harness.replies.wait_for("long-1", count=1, timeout=5)
        assert reply["kind"] == "error" and all(text in reply["text"] for text in hostile.error_reply)
        harness.replies.by_reply.pop("long-1")


async def test_sixty_four_deeply_nested_bodies_do_not_hold_up_the_shard(
    harness: BrokerHarness, raw: RawGateway
) -> None:
    """64 bodies nested 5,000 levels deep are dead-lettered at once, not held until the delivery limit."""
    for _ in range(64):
        await raw.publish(b"[" * 5000 + b"]" * 5000, KEY, message_id="deep")
    took = await _good_event_answered(harness, raw)
    await harness.dead.wait_count(64, timeout=10)
    assert set(harness.dead.routing_keys) == {"too-deep"} and len(harness.dead.items) == 64
    assert took < ANSWER_WITHIN, f"the good event waited {took:.2f}s behind the deep bodies"
    worker = harness.workers[0]
    assert worker.handler is not None and worker.handler.stats.redelivered == 0, "nothing went round twice"
