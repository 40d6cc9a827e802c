"""Readiness that tells the truth: not ready while the broker blocks the connection (a memory
alarm, on a private node) or the store refuses writes, and a worker that is not ready takes no
new deliveries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from schemas.events import ChatSource, InboundMessage
from schemas.topology import Topology
from tests.support.backends import WorkerStore
from tests.support.broker import BrokerHarness, isolated_topology, require_broker
from tests.support.rabbit_nodes import RabbitNode, private_nodes
from worker.amqp.service import WorkerService
from worker.engine.tokens import TiktokenCounter
from worker.service.processor import ordering_key
from worker.stores.cached import CachedStore
from worker.stores.sqlite import SqliteStore

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.timeout(180)]
NAMES = Topology(prefix="ready", shards=2)


@pytest.fixture
def node() -> Iterator[RabbitNode]:
    with private_nodes(1) as nodes:
        yield nodes[0]


async def _until(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not {what} within {within}s")


async def test_not_ready_and_not_consuming_while_the_broker_blocks(
    node: RabbitNode, tmp_path: Path, token_counter: TiktokenCounter
) -> None:
    harness = await BrokerHarness(node.url, NAMES, WorkerStore.sqlite_in(tmp_path), token_counter).open()
    try:
        worker = await harness.start_worker()
        assert await worker.readiness() == (True, "ok")
        node.ctl("set_vm_memory_high_watermark", "0.0000001")  # every publisher is blocked now

        async def blocked() -> bool:
            ready, reason = await worker.readiness()
            return not ready and "blocks" in reason

        await _until(blocked, 15, "reported blocked")  # the heartbeat publish meets the block
        await _until(lambda: _consuming(worker, False), 5, "paused")
        node.ctl("set_vm_memory_high_watermark", "0.4")

        async def ready() -> bool:
            return (await worker.readiness())[0]

        await _until(ready, 15, "ready again")
        await _until(lambda: _consuming(worker, True), 5, "consuming again")
        assert harness.gateway is not None
        source = ChatSource(channel="slack", peer_id="p", user_id="p")
        event = InboundMessage(event_id="after-the-alarm", source=source, text="hello")
        await harness.gateway.publish(event, ordering_key("main", source))
        await harness.turns.wait_for("after-the-alarm", timeout=15)
    finally:
        await harness.close()


async def _consuming(worker: WorkerService, wanted: bool) -> bool:
    return worker.consuming == wanted


async def test_not_ready_and_not_consuming_while_the_store_refuses_writes(
    tmp_path: Path, token_counter: TiktokenCounter
) -> None:
    url = require_broker()
    async with isolated_topology(url, shards=2) as names:
        harness = await BrokerHarness(url, names, WorkerStore.sqlite_in(tmp_path), token_counter).open()
        try:
            worker = await harness.start_worker()
            assert await worker.readiness() == (True, "ok")
            cache = harness.manager.store
            assert isinstance(cache, CachedStore) and isinstance(cache.inner, SqliteStore)
            store = cache.inner  # the SQLite store behind the session cache
            await store._db.write(lambda conn: conn.execute("PRAGMA query_only = 1"), alone=True)
            ready, reason = await worker.readiness()  # no traffic: the write probe finds it
            assert not ready and "store unavailable" in reason and "readonly" in reason
            await _until(lambda: _consuming(worker, False), 5, "paused")
            await store._db.write(lambda conn: conn.execute("PRAGMA query_only = 0"), alone=True)
            await _until(lambda: _consuming(worker, True), 10, "consuming again")
            assert await worker.readiness() == (True, "ok")
        finally:
            await harness.close()
