"""Worker processes killed and stopped under a steady stream: nothing lost, doubled or reordered."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections.abc import AsyncIterator

import pytest

from schemas.events import ChatSource, InboundMessage
from tests.support.backends import BACKENDS, WorkerStore
from tests.support.broker import BrokerHarness, isolated_topology
from tests.support.processes import WorkerProcesses
from worker import create_session_manager
from worker.engine.tokens import TiktokenCounter
from worker.service.processor import ordering_key

pytestmark = [
    pytest.mark.broker,
    pytest.mark.slow,
    pytest.mark.parametrize("worker_store", BACKENDS, indirect=True),
]


@pytest.fixture
async def rig(
    amqp_url: str, worker_store: WorkerStore, token_counter: TiktokenCounter
) -> AsyncIterator[tuple[BrokerHarness, WorkerProcesses]]:
    async with isolated_topology(amqp_url, shards=6) as names:
        harness = await BrokerHarness(amqp_url, names, worker_store, token_counter).open()
        workers = WorkerProcesses(amqp_url, names, worker_store)
        try:
            yield harness, workers
        finally:
            workers.stop_all()
            await harness.close()


async def _stream(harness: BrokerHarness, slots: int, rounds: int, pace: float) -> None:
    assert harness.gateway is not None
    for round_ in range(rounds):
        batch = []
        for slot in range(slots):
            source = ChatSource(channel="slack", peer_id=f"p{slot}", user_id=f"p{slot}")
            event = InboundMessage(event_id=f"e-{slot}-{round_}", source=source, text=f"slot {slot} message {round_}")
            batch.append(harness.gateway.publish(event, ordering_key("main", source)))
        await asyncio.gather(*batch)
        await asyncio.sleep(pace)


async def _check(harness: BrokerHarness, slots: int, rounds: int, token_counter: TiktokenCounter) -> None:
    await harness.turns.wait_count(slots * rounds, timeout=180)
    answered = {turn["inReplyTo"] for turn in harness.turns.items}
    deadline = time.monotonic() + 120
    while len(answered) < slots * rounds and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        answered = {turn["inReplyTo"] for turn in harness.turns.items}
    assert len(answered) == slots * rounds, "lost events"
    ids_per_event: dict[str, set[str]] = {}
    for turn in harness.turns.items:
        ids_per_event.setdefault(turn["inReplyTo"], set()).add(turn["eventId"])
    assert all(len(ids) == 1 for ids in ids_per_event.values()), "a re-published turn changed its id"
    async with create_session_manager(token_counter=token_counter, **harness.store.options()) as manager:
        for slot in range(slots):
            session = await manager.get_or_create_session(user_id=f"p{slot}", channel_id="slack", peer_id=f"p{slot}")
            history = await manager.get_history(session.id, limit=rounds + 5)
            assert [e.content for e in history] == [f"slot {slot} message {r}" for r in range(rounds)], f"slot {slot}"
            assert [e.seq for e in history] == list(range(1, rounds + 1)) and session.message_count == rounds


async def test_sigkill_a_random_worker_ten_times(
    rig: tuple[BrokerHarness, WorkerProcesses], token_counter: TiktokenCounter
) -> None:
    harness, workers = rig
    for index in range(3):
        workers.start(index)
    slots, rounds = 200, 12
    stream = asyncio.create_task(_stream(harness, slots, rounds, pace=0.4))
    chaos = random.Random(8)
    for _ in range(10):
        await asyncio.sleep(0.45)
        victim = chaos.randrange(3)
        workers.signal(victim, signal.SIGKILL)
        workers.wait(victim, 10)
        workers.start(victim, wait=False)
    await stream
    for index in range(3):
        workers.wait_ready(index)
    await _check(harness, slots, rounds, token_counter)


async def test_sigterm_under_load_finishes_in_flight_work(
    rig: tuple[BrokerHarness, WorkerProcesses], token_counter: TiktokenCounter
) -> None:
    harness, workers = rig
    workers.start(0)
    slots, rounds = 150, 10
    await _stream(harness, slots, rounds, pace=0)
    await harness.turns.wait_count(300, timeout=60)
    began = time.monotonic()
    workers.signal(0, signal.SIGTERM)
    assert workers.wait(0, 30) == 0
    assert time.monotonic() - began < 30
    stopped_at = len(harness.turns.items)
    workers.start(1)
    await _check(harness, slots, rounds, token_counter)
    assert stopped_at < slots * rounds  # the stop really happened mid-stream
