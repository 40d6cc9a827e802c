"""`sessions dead-letters --replay`: each dead letter is moved at most once per run, even when
the worker dead-letters it again at once, and the run says how many it replayed and skipped."""

from __future__ import annotations

import asyncio

import aio_pika
import pytest

from tests.support.broker import BrokerHarness
from worker.amqp.connection import connect_once
from worker.amqp.dead_letters import drain_dead_letters

pytestmark = pytest.mark.broker
STILL_BAD = [b"{not json", b"[1, 2]", b'{"type": "teleport", "eventId": "x1"}']


async def _queue_depth(harness: BrokerHarness) -> int:
    connection = await connect_once(harness.url)
    async with connection:
        queue = await (await connection.channel()).get_queue(harness.names.dead_letter_queue, ensure=True)
        result = queue.declaration_result
        return int(result.message_count or 0) if result is not None else 0


async def _publish(harness: BrokerHarness, exchange_name: str, *messages: aio_pika.Message) -> None:
    connection = await connect_once(harness.url)
    async with connection:
        exchange = await (await connection.channel()).get_exchange(exchange_name)
        for message in messages:
            await exchange.publish(message, routing_key="k")


async def test_replaying_still_bad_dead_letters_moves_each_once(harness: BrokerHarness) -> None:
    await harness.start_worker()
    await _publish(harness, harness.names.inbound_exchange, *(aio_pika.Message(body) for body in STILL_BAD))
    await harness.dead.wait_count(3)
    report = await drain_dead_letters(harness.url, harness.names, count=100, replay=True)
    assert (report.depth_at_start, report.replayed, report.skipped) == (3, 3, 0)
    assert [item["reason"] for item in report.items] == ["invalid-json", "schema", "unknown-type"]
    await harness.dead.wait_count(6)  # the worker refused each replayed copy once more
    await asyncio.sleep(0.5)
    assert len(harness.dead.items) == 6, "a dead letter was replayed more than once"
    assert await _queue_depth(harness) == 3


async def test_a_dead_letter_met_twice_in_one_run_is_skipped_and_kept(harness: BrokerHarness) -> None:
    twice = [aio_pika.Message(b"{not json", message_id="same") for _ in range(2)]
    await _publish(harness, harness.names.dead_letter_exchange, *twice, aio_pika.Message(b"[]", message_id="other"))
    await harness.dead.wait_count(3)
    report = await drain_dead_letters(harness.url, harness.names, count=100, replay=True)
    assert (report.replayed, report.skipped) == (2, 1)
    assert [item["action"] for item in report.items] == ["replayed", "skipped", "replayed"]
    assert await _queue_depth(harness) == 1  # the skipped one stays for the next run
    looked = await drain_dead_letters(harness.url, harness.names, count=100, replay=False)
    assert [item["messageId"] for item in looked.items] == ["same"] and looked.replayed == 0
