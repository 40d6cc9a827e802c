"""Several workers on one broker: order per slot, exactly-once effect, spread, and failover."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict

import aio_pika
import pytest

from schemas.events import ChatSource, InboundMessage
from schemas.topology import HEADER_DEAD_REASON
from tests.support.backends import BACKENDS
from tests.support.broker import BrokerHarness
from worker.amqp.publisher import json_message
from worker.service.processor import ordering_key

pytestmark = [pytest.mark.broker, pytest.mark.parametrize("worker_store", BACKENDS, indirect=True)]


async def _balanced(harness: BrokerHarness, timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while True:
            owned = [w.owned for w in harness.workers if w.handler is not None and not w._stopping.is_set()]
            if sum(len(o) for o in owned) == harness.names.shards and all(owned):
                return
            await asyncio.sleep(0.05)


async def _publish_rounds(
    harness: BrokerHarness, slots: int, rounds: int, start_round: int = 0
) -> list[InboundMessage]:
    assert harness.gateway is not None
    sent: list[InboundMessage] = []
    for round_ in range(start_round, start_round + rounds):
        batch = [
            harness.gateway.send_message(
                channel="slack",
                peer_id=f"p{slot}",
                user_id=f"p{slot}",
                text=f"slot {slot} message {round_}",
                event_id=f"e-{slot}-{round_}",
            )
            for slot in range(slots)
        ]
        sent.extend(await asyncio.gather(*batch))
    return sent


async def _assert_transcripts(harness: BrokerHarness, slots: int, rounds: int) -> None:
    manager = harness.manager
    for slot in range(slots):
        found = await manager.get_or_create_session(user_id=f"p{slot}", channel_id="slack", peer_id=f"p{slot}")
        # As stored: `found` may be worker 0's cached copy from before its shard moved to another
        # worker (by design: a stale copy only fails the version guard of its next append).
        session = await manager.get_session(found.id)
        history = await manager.get_history(session.id, limit=rounds + 5)
        assert [e.content for e in history] == [f"slot {slot} message {r}" for r in range(rounds)], slot
        assert [e.seq for e in history] == list(range(1, rounds + 1))
        assert session.message_count == rounds


async def test_three_workers_keep_order_store_once_and_share_the_load(harness: BrokerHarness) -> None:
    for _ in range(3):
        await harness.start_worker()
    await _balanced(harness)
    slots, rounds = 500, 4
    await _publish_rounds(harness, slots, rounds)
    await harness.turns.wait_count(slots * rounds, timeout=120)
    assert len({t["eventId"] for t in harness.turns.items}) == slots * rounds
    await _assert_transcripts(harness, slots, rounds)
    applied = [w.handler.stats.applied for w in harness.workers if w.handler is not None]
    assert sum(applied) == slots * rounds and all(count > 0 for count in applied), applied


async def test_a_worker_cut_off_mid_stream_hands_over_without_loss_or_doubles(harness: BrokerHarness) -> None:
    for _ in range(3):
        await harness.start_worker()
    await _balanced(harness)
    slots = 200
    publisher = asyncio.create_task(_publish_rounds(harness, slots, 6))
    await harness.turns.wait_count(slots, timeout=60)
    victim = harness.workers[1]
    await victim.abort()
    await publisher
    await _balanced(harness)
    await harness.turns.wait_count(slots * 6, timeout=120)
    await asyncio.sleep(0.5)
    await _assert_transcripts(harness, slots, 6)
    by_event: dict[str, set[str]] = defaultdict(set)
    for turn in harness.turns.items:
        by_event[turn["inReplyTo"]].add(turn["eventId"])
    assert len(by_event) == slots * 6
    assert all(len(ids) == 1 for ids in by_event.values())  # a re-sent turn keeps its id


async def test_same_event_twice_has_one_effect_and_identical_reply_ids(harness: BrokerHarness) -> None:
    await harness.start_worker()
    assert harness.gateway is not None
    source = ChatSource(channel="telegram", peer_id="7", user_id="7")
    message = InboundMessage(event_id="dup-1", source=source, text="only once")
    command = InboundMessage(event_id="dup-2", source=source, text='/checkpoint save "twice"')
    for event in (message, message, command, command):
        await harness.gateway.publish(event, ordering_key("main", source))
    turns = await harness.turns.wait_for("dup-1", count=2)
    replies = await harness.replies.wait_for("dup-2", count=2)
    assert turns[0]["eventId"] == turns[1]["eventId"]
    assert replies[0]["eventId"] == replies[1]["eventId"] and replies[0]["text"] == replies[1]["text"]
    session = await harness.manager.get_or_create_session(user_id="7", channel_id="telegram", peer_id="7")
    assert session.message_count == 1
    assert len(await harness.manager.list_checkpoints(session.id)) == 1


async def test_poison_messages_are_dead_lettered_and_the_shard_moves_on(harness: BrokerHarness) -> None:
    await harness.start_worker(max_payload_bytes=4096)
    assert harness.gateway is not None
    source = ChatSource(channel="telegram", peer_id="9", user_id="9")
    key = ordering_key("main", source)
    connection = await aio_pika.connect(harness.url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(harness.names.inbound_exchange)
        bad_bodies = [
            b"{not json",
            json.dumps({"type": "message.inbound", "eventId": {"$gt": ""}, "text": "x"}).encode(),
            json.dumps({"type": "teleport", "eventId": "x1"}).encode(),
            json.dumps(
                {"type": "message.inbound", "eventId": "big", "source": {"channel": "telegram"}, "text": "x" * 10_000}
            ).encode(),
        ]
        for body in bad_bodies:
            await exchange.publish(aio_pika.Message(body), routing_key=key)
        good = InboundMessage(event_id="after-poison", source=source, text="still here")
        await exchange.publish(json_message(good), routing_key=key)
        await harness.turns.wait_for("after-poison")
    await harness.dead.wait_count(4)
    assert [item for item in harness.dead.items if "text" in item and item["text"] == "still here"] == []
    reasons = await _dead_reasons(harness)
    assert reasons == ["invalid-json", "schema", "unknown-type", "oversize"]


async def _dead_reasons(harness: BrokerHarness) -> list[str]:
    connection = await aio_pika.connect(harness.url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(harness.names.dead_letter_queue)
        reasons = []
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            reasons.append(str((message.headers or {})[HEADER_DEAD_REASON]))
        return reasons
