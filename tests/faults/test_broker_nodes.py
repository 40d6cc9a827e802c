"""The broker itself fails under a steady stream: a RabbitMQ node restarted (gracefully, then
killed) and a three-node cluster that loses the node holding every shard queue's leader. Three
worker processes; afterwards every event was applied exactly once and every slot's transcript is
in publish order.

These run on private nodes (tests/support/rabbit_nodes.py), never on the machine's shared broker.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from schemas.topology import DEFAULT_DELIVERY_LIMIT, Topology
from tests.support.backends import WorkerStore
from tests.support.broker import BrokerHarness
from tests.support.processes import WorkerProcesses
from tests.support.rabbit_nodes import RabbitNode, private_nodes
from tests.support.stream_audit import Audit, StreamLoad, StreamStats, audit, publish_stream, wait_answered
from worker.amqp.connection import connect_once
from worker.amqp.topology import declare_topology
from worker.engine.tokens import TiktokenCounter

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.timeout(240)]
WORKERS = 3
NAMES = Topology(prefix="faults", shards=6)
# Published faster than three workers apply it, so every fault finds deliveries in flight.
LOAD = StreamLoad(slots=100, rounds=20, pace=0.05)


@pytest.fixture
def single_node() -> Iterator[RabbitNode]:
    with private_nodes(1) as nodes:
        yield nodes[0]


@pytest.fixture
def cluster() -> Iterator[list[RabbitNode]]:
    with private_nodes(3, cluster=True) as nodes:
        yield nodes


@asynccontextmanager
async def rig(
    harness_url: str, worker_url: str, tmp_path: Path, counter: TiktokenCounter
) -> AsyncIterator[tuple[BrokerHarness, WorkerProcesses]]:
    """A harness with durable taps and three worker processes (logs in tmp_path), all started."""
    store = WorkerStore.sqlite_in(tmp_path)
    harness = await BrokerHarness(harness_url, NAMES, store, counter, durable_taps=True).open()
    workers = WorkerProcesses(worker_url, NAMES, store, log_dir=tmp_path)
    try:
        for index in range(WORKERS):
            workers.start(index)
        yield harness, workers
    finally:
        workers.stop_all()
        await harness.close()


async def finish_and_audit(
    harness: BrokerHarness, workers: WorkerProcesses, load: StreamLoad, tmp_path: Path, counter: TiktokenCounter
) -> Audit:
    """The stream drained, every worker recovered (alive, connected, consuming its share of the
    shards again), then the audit."""
    await wait_answered(harness, load, within=120)
    for index in range(WORKERS):
        assert workers.procs[index].poll() is None, f"worker {index} died; see {tmp_path}/worker-{index}.log"
        workers.wait_ready(index, within=60)
        await wait_owning_shards(workers, index, within=60)
    return await audit(harness, load, counter)


async def wait_owning_shards(workers: WorkerProcesses, index: int, within: float) -> None:
    deadline = time.monotonic() + within
    while (await asyncio.to_thread(workers.metric, index, "sessions_owned_shards") or 0) < 1:
        assert time.monotonic() < deadline, f"worker {index} owns no shard {within}s after the fault"
        await asyncio.sleep(0.5)


async def test_rabbitmq_restarted_mid_stream(
    single_node: RabbitNode, tmp_path: Path, token_counter: TiktokenCounter
) -> None:
    load, stats = LOAD, StreamStats()
    began = time.monotonic()
    async with rig(single_node.url, single_node.url, tmp_path, token_counter) as (harness, workers):
        routes = [await asyncio.to_thread(slot_shards, single_node, load)]
        stream = asyncio.create_task(publish_stream(harness, load, stats))
        await stats.wait_rounds(6)
        await asyncio.to_thread(single_node.restart)
        routes.append(await asyncio.to_thread(slot_shards, single_node, load))
        await stats.wait_rounds(14)
        await asyncio.to_thread(single_node.restart, hard=True)
        routes.append(await asyncio.to_thread(slot_shards, single_node, load))
        await stream
        found = await finish_and_audit(harness, workers, load, tmp_path, token_counter)
        routes.append(await asyncio.to_thread(slot_shards, single_node, load))
    moved = {slot for slot in range(load.slots) if len({shards[slot] for shards in routes}) > 1}
    faults = f"node restarted twice mid-stream (graceful stop, then SIGKILL); slots moved shard: {len(moved)}"
    print("\n" + found.summary("broker restart", load, WORKERS, faults, stats) + f"; {time.monotonic() - began:.1f}s")
    assert stats.resent > 0 or found.republished > 0, "the restarts did not hit the stream"
    # The inbound exchange maps a key to a shard the same way after every restart (x-modulus-hash).
    assert not moved, f"slots routed to another shard after a restart: {sorted(moved)}"
    assert found.clean, found


async def test_cluster_node_holding_the_leaders_stopped_mid_stream(
    cluster: list[RabbitNode], tmp_path: Path, token_counter: TiktokenCounter
) -> None:
    victim, *survivors = cluster
    # Declared through the victim, so every shard queue's leader starts there.
    connection = await connect_once(victim.url)
    async with connection:
        await declare_topology(await connection.channel(), NAMES, delivery_limit=DEFAULT_DELIVERY_LIMIT)
    assert shard_leaders(survivors[0]) == {victim.name: NAMES.shards}, "leaders not on the victim"
    assert all(len(members) == 3 for members in shard_members(survivors[0]).values()), "queues span 3 nodes"
    load, stats = LOAD, StreamStats()
    began = time.monotonic()
    harness_url = ",".join(node.url for node in reversed(cluster))  # the harness starts on a survivor
    worker_url = ",".join(node.url for node in cluster)  # worker i starts on node i: worker 0 on the victim
    async with rig(harness_url, worker_url, tmp_path, token_counter) as (harness, workers):
        routes_before = await asyncio.to_thread(slot_shards, survivors[0], load)
        stream = asyncio.create_task(publish_stream(harness, load, stats))
        await stats.wait_rounds(8)
        await asyncio.to_thread(victim.kill)
        await stream
        found = await finish_and_audit(harness, workers, load, tmp_path, token_counter)
        leaders = await asyncio.to_thread(shard_leaders, survivors[0])
        routes_after = await asyncio.to_thread(slot_shards, survivors[0], load)
    faults = f"{victim.name} (every shard leader, worker 0's node) killed mid-stream; new leaders {leaders}"
    print(
        "\n" + found.summary("cluster node loss", load, WORKERS, faults, stats) + f"; {time.monotonic() - began:.1f}s"
    )
    assert found.clean, found
    assert victim.name not in leaders and sum(leaders.values()) == NAMES.shards
    assert routes_after == routes_before, "the surviving nodes route keys to other shards"


def slot_shards(node: RabbitNode, load: StreamLoad) -> list[str]:
    """The shard queue each slot's events are routed to right now."""
    return node.routes(NAMES.inbound_exchange, load.routing_keys())


def _shard_queues(node: RabbitNode) -> list[dict[str, object]]:
    rows = json.loads(node.ctl("list_queues", "name", "leader", "members", "--formatter", "json", "--quiet"))
    shards = set(NAMES.shard_queues())
    return [row for row in rows if row["name"] in shards]


def shard_leaders(node: RabbitNode) -> dict[str, int]:
    leaders: dict[str, int] = {}
    for row in _shard_queues(node):
        leaders[str(row["leader"])] = leaders.get(str(row["leader"]), 0) + 1
    return leaders


def shard_members(node: RabbitNode) -> dict[str, list[str]]:
    return {str(row["name"]): [str(m) for m in row["members"]] for row in _shard_queues(node)}  # type: ignore[attr-defined]
