"""Crash loops: worker deaths alone never dead-letter healthy events, and an event that kills the
worker every time is dead-lettered `poison` after SESSIONS_POISON_ATTEMPTS tries while the rest of
its chat goes on; a worker killed right after it reset a session still announces the reset."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel

from schemas.events import ChatSource, InboundMessage
from tests.support.backends import WorkerStore
from tests.support.broker import BrokerHarness, isolated_topology
from tests.support.crashing_worker import CRASH_MARKER, CRASH_ONCE_MARKER
from tests.support.processes import WorkerProcesses
from worker import create_session_manager
from worker.engine.clock import ManualClock
from worker.engine.tokens import TiktokenCounter
from worker.service.processor import ordering_key

pytestmark = [pytest.mark.broker, pytest.mark.slow]
log = logging.getLogger(__name__)


@pytest.fixture
async def harness_and_db(
    amqp_url: str, tmp_path: Path, token_counter: TiktokenCounter
) -> AsyncIterator[tuple[BrokerHarness, Path]]:
    async with isolated_topology(amqp_url, shards=6) as names:
        harness = await BrokerHarness(amqp_url, names, WorkerStore.sqlite_in(tmp_path), token_counter).open()
        db = tmp_path / "sessions.db"
        async with create_session_manager(db_path=str(db), token_counter=token_counter):
            pass  # the schema exists before any worker starts (one is started on a locked store)
        try:
            yield harness, db
        finally:
            await harness.close()


def _source(slot: int) -> ChatSource:
    return ChatSource(channel="slack", peer_id=f"p{slot}", user_id=f"p{slot}")


async def _publish(harness: BrokerHarness, slots: int, rounds: range) -> None:
    assert harness.gateway is not None
    text = "slot {slot} message {r}"
    for r in rounds:
        events = [
            harness.gateway.publish(
                InboundMessage(event_id=f"e-{slot}-{r}", source=_source(slot), text=text.format(slot=slot, r=r)),
                ordering_key("main", _source(slot)),
            )
            for slot in range(slots)
        ]
        await asyncio.gather(*events)


@contextlib.contextmanager
def locked(db: Path) -> Iterator[None]:
    """Hold the store's write lock, as a long transaction of another process would."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        conn.execute("COMMIT")
        conn.close()


async def _histories(db: Path, token_counter: TiktokenCounter, slots: int) -> dict[int, list[str | None]]:
    async with create_session_manager(db_path=str(db), token_counter=token_counter) as manager:
        found = {}
        for slot in range(slots):
            session = await manager.get_or_create_session(user_id=f"p{slot}", channel_id="slack", peer_id=f"p{slot}")
            found[slot] = [entry.content for entry in await manager.get_history(session.id, limit=1000)]
        return found


async def _all_delivered(channel: AbstractChannel, harness: BrokerHarness, within: float) -> None:
    """Wait until no shard queue has a message ready: the worker holds every one, unacked."""
    deadline = time.monotonic() + within
    ready = -1
    while time.monotonic() < deadline:
        ready = 0
        for name in harness.names.shard_queues():
            queue = await channel.declare_queue(name, passive=True)
            ready += queue.declaration_result.message_count or 0
        if ready == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{ready} messages were still waiting in the shard queues")


async def test_22_sigkills_of_a_worker_holding_hundreds_dead_letter_nothing(
    harness_and_db: tuple[BrokerHarness, Path], amqp_url: str, tmp_path: Path, token_counter: TiktokenCounter
) -> None:
    harness, db = harness_and_db
    # Room for every event in flight at once: the worker holds all of them, 22 times over.
    workers = WorkerProcesses(
        amqp_url, harness.names, WorkerStore("sqlite", str(db)), log_dir=tmp_path, SESSIONS_PREFETCH="400"
    )
    slots, rounds = 60, 8
    await _publish(harness, slots, range(rounds))
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    try:
        with locked(db):
            for _ in range(22):
                workers.start(0, wait=False)
                await _all_delivered(channel, harness, within=30)
                workers.signal(0, signal.SIGKILL)
                workers.wait(0, 10)
        assert not harness.turns.items  # nothing got through the lock
        workers.start(0, wait=False)
        began = time.monotonic()
        await harness.turns.wait_count(slots * rounds, timeout=120)
        log.info(
            "22 kills: all %d events applied %.2fs after the lock was freed", slots * rounds, time.monotonic() - began
        )
    finally:
        workers.stop_all()
        await channel.close()
        await connection.close()
    assert not harness.dead.items, harness.dead.routing_keys[:5]
    assert len({turn["inReplyTo"] for turn in harness.turns.items}) == slots * rounds
    histories = await _histories(db, token_counter, slots)
    for slot in range(slots):
        assert histories[slot] == [f"slot {slot} message {r}" for r in range(rounds)], f"slot {slot}"


async def test_an_event_that_kills_the_worker_is_dead_lettered_as_poison(
    harness_and_db: tuple[BrokerHarness, Path], amqp_url: str, tmp_path: Path, token_counter: TiktokenCounter
) -> None:
    harness, db = harness_and_db
    workers = WorkerProcesses(
        amqp_url,
        harness.names,
        WorkerStore("sqlite", str(db)),
        log_dir=tmp_path,
        module="tests.support.crashing_worker",
        SESSIONS_POISON_ATTEMPTS="5",
    )
    assert harness.gateway is not None
    slots = 12
    await _publish(harness, slots, range(2))  # slot 0's first two messages and the others'
    poison = InboundMessage(event_id="e-poison", source=_source(0), text=f"please {CRASH_MARKER} now")
    await harness.gateway.publish(poison, ordering_key("main", _source(0)))
    await _publish(harness, slots, range(2, 3))  # behind the poison, in its chat too
    crashes, began = 0, time.monotonic()
    workers.start(0, wait=False)
    try:
        while len({t["inReplyTo"] for t in harness.turns.items}) < slots * 3 and time.monotonic() - began < 120:
            await asyncio.sleep(0.2)
            if workers.exited(0):  # a supervisor (Kubernetes, compose) restarts it
                crashes += 1
                workers.start(0, wait=False)
    finally:
        workers.stop_all()
    assert crashes == 5, crashes
    assert harness.dead.routing_keys == ["poison"]
    assert harness.dead.items[0]["eventId"] == "e-poison"
    histories = await _histories(db, token_counter, slots)
    for slot in range(slots):
        assert histories[slot] == [f"slot {slot} message {r}" for r in range(3)], f"slot {slot}"


async def test_a_reset_made_just_before_a_crash_is_announced_after_the_restart(
    harness_and_db: tuple[BrokerHarness, Path], amqp_url: str, tmp_path: Path, token_counter: TiktokenCounter
) -> None:
    harness, db = harness_and_db
    idle_since = ManualClock(datetime.now(UTC) - timedelta(hours=2))
    async with create_session_manager(db_path=str(db), token_counter=token_counter, clock=idle_since) as manager:
        old = await manager.get_or_create_session(user_id="p0", channel_id="slack", peer_id="p0")
        await manager.add_message(old.id, "user", "two hours ago")
    flag = tmp_path / "crashed"
    workers = WorkerProcesses(
        amqp_url,
        harness.names,
        WorkerStore("sqlite", str(db)),
        log_dir=tmp_path,
        module="tests.support.crashing_worker",
        SESSIONS_RESET_MODE="idle",
        SESSIONS_IDLE_MINUTES="30",
        CRASH_ONCE_FLAG=str(flag),
    )
    assert harness.gateway is not None
    # Killed after the reset (archive, new session) and before the entry and its notice.
    event = InboundMessage(event_id="e-back", source=_source(0), text=f"back again {CRASH_ONCE_MARKER}")
    await harness.gateway.publish(event, ordering_key("main", _source(0)))
    workers.start(0, wait=False)
    try:
        began = time.monotonic()
        while not harness.turns.items and time.monotonic() - began < 60:
            await asyncio.sleep(0.2)
            if workers.exited(0):
                workers.start(0, wait=False)
    finally:
        workers.stop_all()
    assert flag.exists()  # it did crash
    resets = [n for n in harness.notices.items if n["kind"] == "session-reset"]
    assert [n["sessionId"] for n in resets] == [old.id]
    assert [t["inReplyTo"] for t in harness.turns.items] == ["e-back"]
