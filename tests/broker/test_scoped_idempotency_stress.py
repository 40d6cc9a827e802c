"""Issue 26's stress test: 2,000 events over 200 chats, 20% reusing another chat's eventId, 5% more
as exact duplicates (half redelivered by the broker, half re-published), two worker processes and an
agent runtime answering every turn. Nothing may cross chats, be lost or doubled, and every duplicate
gets its first outcome again, byte for byte.

The table is printed and written to $TMPDIR/issue26-stress-table.txt.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from tests.support.backends import WorkerStore
from tests.support.broker import BrokerHarness, isolated_topology
from tests.support.processes import WorkerProcesses
from tests.support.raw_gateway import RawGateway, raw_gateway
from tests.support.scoped_audit import audit
from tests.support.scoped_stress import (
    PHASE_ONE_ROUNDS,
    REUSED,
    ROUNDS,
    Duplicate,
    Event,
    Outbound,
    Plan,
    Table,
    answer_text,
    duplicates_seen,
    missing,
)
from tests.support.wire import agent_doc
from worker import create_session_manager
from worker.amqp.taps import bound_queue
from worker.engine.tokens import TiktokenCounter

pytestmark = [pytest.mark.broker, pytest.mark.slow]
TABLE_FILE = Path(os.environ.get("TMPDIR") or tempfile.gettempdir()) / "issue26-stress-table.txt"
WORKERS = 2


class AgentRuntime:
    """Answers every turn it is sent (a re-sent turn too, as a runtime that keeps no state would),
    with ids that repeat in every session: "ans-<seq>" is unique only within its session."""

    def __init__(self, gateway: RawGateway) -> None:
        self.gateway = gateway
        self.answers = 0

    async def on_turn(self, message: AbstractIncomingMessage) -> None:
        turn = json.loads(message.body)
        answer = agent_doc(
            f"ans-{turn['seq']}", turn["sessionId"], answer_text(turn["text"]), in_reply_to=turn["inReplyTo"]
        )
        await self.gateway.publish(answer, turn["orderingKey"])
        self.answers += 1


@pytest.fixture
async def rig(
    amqp_url: str, worker_store: WorkerStore, tmp_path: Path, token_counter: TiktokenCounter
) -> AsyncIterator[tuple[BrokerHarness, WorkerProcesses]]:
    async with isolated_topology(amqp_url, shards=6) as names:
        harness = await BrokerHarness(amqp_url, names, worker_store, token_counter).open()
        workers = WorkerProcesses(amqp_url, names, worker_store, log_dir=tmp_path)
        try:
            yield harness, workers
        finally:
            workers.stop_all()
            await harness.close()


async def _taps(channel: AbstractChannel, harness: BrokerHarness, runtime: AgentRuntime) -> tuple[Outbound, Outbound]:
    turns, replies = Outbound(), Outbound()
    turn_queue = await bound_queue(channel, harness.names.turn_exchange)
    await turn_queue.consume(turns.on_message, no_ack=True)
    runtime_queue = await bound_queue(channel, harness.names.turn_exchange)
    await runtime_queue.consume(runtime.on_turn, no_ack=True)
    reply_queue = await bound_queue(channel, harness.names.reply_exchange)
    await reply_queue.consume(replies.on_message, no_ack=True)
    return turns, replies


async def _publish_round(gateway: RawGateway, plan: Plan, round_: int) -> None:
    """Every chat's event of this round, each chat's in order, the chats concurrently; then the
    re-published duplicates due in this round, after their chat's event."""
    due: dict[int, list[Duplicate]] = {}
    for duplicate in plan.duplicates:
        if duplicate.round == round_:
            due.setdefault(duplicate.event.chat, []).append(duplicate)

    async def chat(events: list[Event]) -> None:
        event = events[round_]
        await gateway.publish(event.body, event.key, message_id=event.event_id)
        for duplicate in due.get(event.chat, []):
            await gateway.publish(duplicate.body, duplicate.event.key, message_id=duplicate.event.event_id)

    await asyncio.gather(*(chat(events) for events in plan.chats))


async def _until(what: str, remaining: Callable[[], int], within: float, stall: float = 20) -> None:
    """Wait until `remaining()` is 0, or `within` seconds pass, or it has not moved for `stall`
    seconds (then the audit says what is missing)."""
    deadline = time.monotonic() + within
    last, moved = remaining(), time.monotonic()
    if isinstance(last, bool):  # an int to mypy: "done?" here would stop the wait at once
        raise TypeError(f"remaining() for {what} must count what is left, not say whether it is done")
    while last and time.monotonic() < deadline and time.monotonic() - moved < stall:
        await asyncio.sleep(0.25)
        now = remaining()
        if now != last:
            last, moved = now, time.monotonic()
    if last:
        print(f"gave up waiting for {what}: {last} remaining")


async def _requeue_as_redeliveries(
    url: str, harness: BrokerHarness, gateway: RawGateway, copies: list[Duplicate]
) -> int:
    """With no worker running, publish the copies, take each off its shard queue unacked and close the
    channel: the broker puts them back flagged as redelivered, as after a worker lost mid-delivery."""
    for duplicate in copies:
        await gateway.publish(duplicate.body, duplicate.event.key, message_id=duplicate.event.event_id)
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=len(copies) + 10)
        held: list[AbstractIncomingMessage] = []

        async def hold(message: AbstractIncomingMessage) -> None:
            held.append(message)  # never acked

        for name in harness.names.shard_queues():  # shard queues allow one active consumer: us, now
            await (await channel.get_queue(name)).consume(hold)
        await _until("the copies to be held", lambda: len(copies) - len(held), 15)
        await asyncio.sleep(0.3)  # anything more would be a leftover of phase one
        await channel.close()  # unacked: requeued, redelivered=true
    return len(held)


def _redeliveries(workers: WorkerProcesses) -> int:
    return int(sum(workers.metric(index, "sessions_redeliveries_total") or 0 for index in range(WORKERS)))


@pytest.mark.timeout(900)
async def test_two_thousand_events_over_two_hundred_chats_never_cross_chats(
    rig: tuple[BrokerHarness, WorkerProcesses], tmp_path: Path, token_counter: TiktokenCounter
) -> None:
    harness, workers = rig
    plan = Plan.build()
    redelivered = [d for d in plan.duplicates if d.how == "redelivered"]
    table = Table(
        events=len(plan.all_events()),
        reused_ids=len(plan.chats) * len(REUSED),
        redelivered=len(redelivered),
        republished_exact=sum(d.how == "exact" for d in plan.duplicates),
        republished_reserialized=sum(d.how == "reserialized" for d in plan.duplicates),
    )
    began = time.monotonic()
    for index in range(WORKERS):
        workers.start(index)
    connection = await aio_pika.connect(harness.url)
    async with connection, raw_gateway(harness.url, harness.names) as gateway:
        runtime = AgentRuntime(gateway)
        turns, replies = await _taps(await connection.channel(), harness, runtime)
        phase_one = [e for events in plan.chats for e in events[:PHASE_ONE_ROUNDS]]
        for round_ in range(PHASE_ONE_ROUNDS):
            await _publish_round(gateway, plan, round_)
        await _until("phase one", lambda: missing(plan, phase_one, turns, replies), 120)

        for index in range(WORKERS):  # stop: drain and ack, so the shard queues are empty
            workers.signal(index, signal.SIGTERM)
            assert workers.wait(index, 30) == 0
        assert await _requeue_as_redeliveries(harness.url, harness, gateway, redelivered) == len(redelivered)
        for index in range(WORKERS):
            workers.start(index)
        await _until(
            "the redeliveries", lambda: len(redelivered) - duplicates_seen(plan, redelivered, turns, replies), 60
        )
        table.broker_redeliveries = _redeliveries(workers)

        for round_ in range(PHASE_ONE_ROUNDS, ROUNDS):
            await _publish_round(gateway, plan, round_)
            if round_ == 7:  # a worker lost mid-stream: its unacked work comes round again
                workers.signal(1, signal.SIGKILL)
                workers.wait(1, 10)
                workers.start(1, wait=False)
        every = plan.all_events()
        await _until(
            "the whole stream",
            lambda: (
                missing(plan, every, turns, replies)
                + len(plan.duplicates)
                - duplicates_seen(plan, plan.duplicates, turns, replies)
            ),
            180,
        )
        workers.wait_ready(1)
        await asyncio.sleep(1.0)  # stragglers: a re-sent answer of a turn seen twice
        for index in range(WORKERS):
            workers.signal(index, signal.SIGTERM)
            workers.wait(index, 30)
        table.agent_answers = runtime.answers
        table.dead_lettered = len(harness.dead.items)
        async with create_session_manager(
            db_path=str(tmp_path / "sessions.db"), token_counter=token_counter
        ) as manager:
            await audit(plan, turns, replies, manager, table)

    report = table.render(WORKERS, time.monotonic() - began)
    print("\n" + report)
    TABLE_FILE.write_text(report + "\n")
    assert table.broker_redeliveries >= len(redelivered), report
    assert table.clean, report
