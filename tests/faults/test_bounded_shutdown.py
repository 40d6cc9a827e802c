"""SIGTERM ends within the grace period plus a small margin, whatever the worker is waiting for:
a broker that blocks publishers (a memory alarm), a store that refuses writes (a locked SQLite
file), a broker that is gone. Afterwards a new worker applies every event exactly once, in order.

On private broker nodes (tests/support/rabbit_nodes.py), never the machine's shared broker.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas.topology import Topology
from tests.support.backends import WorkerStore
from tests.support.broker import BrokerHarness
from tests.support.processes import WorkerProcesses
from tests.support.rabbit_nodes import RabbitNode, private_nodes
from tests.support.stream_audit import StreamLoad, StreamStats, audit, publish_stream, wait_answered
from worker.engine.tokens import TiktokenCounter

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.timeout(300)]
GRACE = 3.0
MARGIN = 3.0  # what a stop may take past the grace: closing channels and connections, exiting
NAMES = Topology(prefix="stops", shards=4)
LOAD = StreamLoad(slots=40, rounds=10, pace=0.0)


@pytest.fixture
def node() -> Iterator[RabbitNode]:
    with private_nodes(1) as nodes:
        yield nodes[0]


def _workers(node: RabbitNode, tmp_path: Path, command: str = "worker") -> WorkerProcesses:
    return WorkerProcesses(
        node.url,
        NAMES,
        WorkerStore.sqlite_in(tmp_path),
        log_dir=tmp_path,
        command=command,
        SESSIONS_SHUTDOWN_GRACE_SECONDS=str(GRACE),
        SESSIONS_RESET_SWEEP_SECONDS="0.5",  # `run`: the scheduler's sweeps publish while blocked too
    )


async def _stop_timed(workers: WorkerProcesses, index: int) -> float:
    """SIGTERM the worker; seconds until it exited (fails past the grace plus the margin)."""
    began = time.monotonic()
    workers.signal(index, signal.SIGTERM)
    try:
        await asyncio.to_thread(workers.wait, index, GRACE + MARGIN + 30)
    finally:
        workers.stop_all()
    return time.monotonic() - began


async def _recover_and_audit(
    harness: BrokerHarness, workers: WorkerProcesses, tmp_path: Path, counter: TiktokenCounter, label: str, took: float
) -> None:
    """A fresh worker drains what the stopped one left; then the audit, and a line for the report."""
    began = time.monotonic()
    workers.start(1)
    await wait_answered(harness, LOAD, within=120)
    recovered = time.monotonic() - began
    workers.stop_all()
    found = await audit(harness, LOAD, counter)
    fault = f"SIGTERM to exit {took:.1f}s (grace {GRACE:g}s)"
    print(
        f"\n{found.summary(label, LOAD, 1, fault, StreamStats())}; the next worker drained the rest in {recovered:.1f}s"
    )
    assert took <= GRACE + MARGIN, f"{label}: SIGTERM took {took:.1f}s; see {tmp_path}/worker-0.log"
    assert found.clean, found


async def _stream_in_flight(harness: BrokerHarness) -> None:
    """The whole stream published and confirmed, the worker busy with it."""
    stats = StreamStats()
    await publish_stream(harness, LOAD, stats)
    await harness.turns.wait_count(20, timeout=60)


@pytest.mark.parametrize("command", ["worker", "run"])
async def test_sigterm_under_a_memory_alarm_exits_in_time(
    node: RabbitNode, tmp_path: Path, token_counter: TiktokenCounter, command: str
) -> None:
    harness = await BrokerHarness(
        node.url, NAMES, WorkerStore.sqlite_in(tmp_path), token_counter, durable_taps=True
    ).open()
    workers = _workers(node, tmp_path, command)
    try:
        workers.start(0)
        await _stream_in_flight(harness)
        node.ctl("set_vm_memory_high_watermark", "absolute", "1")  # every publisher is blocked from now on
        await asyncio.sleep(1.0)  # the worker's next publishes (outcomes, heartbeats) hang
        took = await _stop_timed(workers, 0)
        node.ctl("set_vm_memory_high_watermark", "0.4")
        await _recover_and_audit(harness, workers, tmp_path, token_counter, f"memory alarm, sessions {command}", took)
    finally:
        workers.stop_all()
        await harness.close()


async def test_sigterm_while_the_store_refuses_writes_exits_in_time(
    node: RabbitNode, tmp_path: Path, token_counter: TiktokenCounter
) -> None:
    harness = await BrokerHarness(
        node.url, NAMES, WorkerStore.sqlite_in(tmp_path), token_counter, durable_taps=True
    ).open()
    workers = _workers(node, tmp_path)
    try:
        workers.start(0)
        await _stream_in_flight(harness)
        lock = sqlite3.connect(tmp_path / "sessions.db", timeout=30, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")  # every write of the worker now waits, then fails busy
        try:
            await asyncio.sleep(1.0)
            took = await _stop_timed(workers, 0)
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        await _recover_and_audit(harness, workers, tmp_path, token_counter, "store locked", took)
    finally:
        workers.stop_all()
        await harness.close()


async def test_sigterm_after_the_broker_is_gone_exits_in_time(
    node: RabbitNode, tmp_path: Path, token_counter: TiktokenCounter
) -> None:
    harness = await BrokerHarness(
        node.url, NAMES, WorkerStore.sqlite_in(tmp_path), token_counter, durable_taps=True
    ).open()
    workers = _workers(node, tmp_path)
    try:
        workers.start(0)
        await _stream_in_flight(harness)
        await asyncio.to_thread(node.kill)  # the connection is lost; the worker keeps reconnecting
        await asyncio.sleep(1.0)
        took = await _stop_timed(workers, 0)
        await asyncio.to_thread(node.start)
        await asyncio.to_thread(node.wait_started)
        await _recover_and_audit(harness, workers, tmp_path, token_counter, "broker lost", took)
    finally:
        workers.stop_all()
        await harness.close()
