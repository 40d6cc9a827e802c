"""What every `sessions bench` case shares: its settings, the inbound events it publishes, and a
fresh topology with a tap on the turn exchange and the consumer process under test."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aio_pika
from aio_pika.abc import AbstractChannel

from benchmarks import cpu
from benchmarks.population import BENCH_CHANNEL, slot_key, slot_user
from benchmarks.wire import WireClient
from schemas.events import ChatSource, InboundMessage
from schemas.topology import DEFAULT_DELIVERY_LIMIT, Topology
from worker.amqp.publisher import json_message
from worker.amqp.topology import declare_topology

KEY = base64.b64encode(b"bench-master-key-32-bytes-long!!").decode()
_IN_REPLY_TO = b'"inReplyTo":"'
_EVENT_ID = b'"eventId":"'
TEXT = "Could you check how my portfolio did this week and whether the rebalancing went through? " * 2


@dataclass
class BenchConfig:
    url: str
    messages: int = 20_000
    slots: int = 1_000
    shards: int = 16
    prefetch: int = 64
    stored_sessions: int = 100_000
    long_slots: int = 100
    transcript_entries: int = 10_000
    latency_seconds: float = 20.0
    # Each latency case is warmed by a drain of this many messages before it is measured.
    latency_warm_up: int = 5_000
    # Fractions of the worker's maximum rate at which both sides' latency is measured; the
    # target figure is the one at half.
    latency_fractions: tuple[float, ...] = (0.125, 0.25, 0.375, 0.5)
    # How long each of the two offers that find a side's live maximum lasts.
    live_seconds: float = 10.0
    memory_events: int = 200_000
    rounds: int = 3
    # Consumer processes per side, the same for the bare loop and the worker: one per core, as a
    # worker is deployed (CPython runs one core's worth of Python per process). Shards are shared
    # out among the workers by their membership; the bare loops all consume every shard queue.
    processes: int = field(default_factory=lambda: os.cpu_count() or 1)
    # With several processes a side, one bare / worker pair of a single process each first.
    single_process_pair: bool = True
    # Where the cases' SQLite stores go (a full run writes about 2 GB); None: a temporary
    # directory that run() removes at the end.
    workdir: Path | None = None
    # The worker's store: "sqlite", or "mongodb" on the server at mongodb_url (a database per
    # case, dropped afterwards; benchmarks/mongodb.py says which phases run there).
    store: str = "sqlite"
    mongodb_url: str | None = None

    @classmethod
    def quick(cls, url: str) -> BenchConfig:
        """Every phase at small counts, within about a minute (a smoke run: its figures are rough),
        without the single-process pair."""
        return cls(
            url,
            messages=2_000,
            stored_sessions=30_000,
            long_slots=10,
            latency_seconds=2.5,
            latency_warm_up=1_000,
            latency_fractions=(0.5,),
            live_seconds=3.0,
            memory_events=3_000,
            rounds=1,
            single_process_pair=False,
        )


class Arrivals:
    """Replies seen on a tap queue: count, first/last arrival, and, while a latency measurement
    tracks them, the arrival time of each reply to one of its events."""

    def __init__(self) -> None:
        self.count = 0
        self.first = 0.0
        self.last = 0.0
        self.by_id: dict[str, float] = {}
        # Only the latency phase needs to know which message a reply answers, and only for its
        # own events: a straggler from an earlier measurement is not one of them.
        self._tracked: str | None = None
        self._wake = asyncio.Event()

    def track(self, prefix: str | None) -> None:
        """Record replies to events whose ids start with `prefix` (None: stop), from a clean slate."""
        self._tracked = prefix
        self.by_id = {}

    def on_body(self, body: bytes) -> None:
        now = time.perf_counter()
        self.first = self.first or now
        self.last = now
        self.count += 1
        if self._tracked is not None:
            answered = answered_id(body)
            if answered.startswith(self._tracked):
                self.by_id[answered] = now
        self._wake.set()

    async def wait_for(self, count: int, within: float) -> None:
        """Until `count` replies in all have arrived."""
        await self._wait(lambda: self.count >= count, within, lambda: f"only {self.count} of {count} replies arrived")

    async def wait_for_tracked(self, count: int, within: float) -> None:
        """Until `count` replies to the tracked events have arrived."""
        await self._wait(
            lambda: len(self.by_id) >= count, within, lambda: f"only {len(self.by_id)} of {count} replies arrived"
        )

    async def _wait(self, done: Callable[[], bool], within: float, shortfall: Callable[[], str]) -> None:
        deadline = time.perf_counter() + within
        while not done():
            self._wake.clear()
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise TimeoutError(shortfall())
            try:
                async with asyncio.timeout(min(remaining, 1.0)):
                    await self._wake.wait()
            except TimeoutError:
                continue


def answered_id(body: bytes) -> str:
    """The inbound event a reply answers, found without parsing the body (the tap shares the
    machine with what it measures): a turn event's inReplyTo; else, in the bare loop's copy of the
    inbound body, its eventId. The first match of either is a field name: inside a string value
    its quotes would be escaped."""
    for field_name in (_IN_REPLY_TO, _EVENT_ID):
        start = body.find(field_name)
        if start >= 0:
            start += len(field_name)
            return body[start : body.index(b'"', start)].decode()
    return ""


def inbound(index: int, slots: int, tag: str) -> tuple[InboundMessage, str]:
    slot = index % slots
    user = slot_user(slot)
    source = ChatSource(channel=BENCH_CHANNEL, peer_id=user, user_id=user, message_id=f"m{index}")
    return InboundMessage(event_id=f"{tag}-{index}", source=source, text=TEXT), slot_key(slot)


async def publish_many(channel: AbstractChannel, names: Topology, start: int, count: int, slots: int, tag: str) -> None:
    exchange = await channel.get_exchange(names.inbound_exchange)
    for base in range(start, start + count, 500):
        batch = [inbound(i, slots, tag) for i in range(base, min(base + 500, start + count))]
        await asyncio.gather(*(exchange.publish(json_message(event), routing_key=key) for event, key in batch))


class Case:
    """One fresh topology with a tap on the turn exchange, and the consumer process under test."""

    def __init__(self, config: BenchConfig, name: str) -> None:
        self.config = config
        self.names = Topology(f"bench{uuid.uuid4().hex[:8]}", config.shards)
        if config.workdir is None:
            raise ValueError("a case needs config.workdir: run() provides a temporary one")
        self.db_path = str(config.workdir / f"{name}.db")
        self.mongodb_database = f"bench_{self.names.prefix}"
        self.processes: list[subprocess.Popen[bytes]] = []
        self.arrivals = Arrivals()
        self.wire: WireClient | None = None  # the tap and the latency phase's publisher

    async def open(self, connection: aio_pika.abc.AbstractConnection) -> AbstractChannel:
        """Declare the topology and start the tap; the channel returned pre-loads the queues."""
        channel = await connection.channel(publisher_confirms=True)
        await declare_topology(channel, self.names, delivery_limit=DEFAULT_DELIVERY_LIMIT)
        # The tap and the latency phase's publishes go through a connection that does as little
        # per message as the protocol allows (benchmarks/wire.py). (Not restored after a
        # reconnect: a benchmark whose broker goes away has failed anyway.)
        self.wire = await WireClient.connect(self.config.url)
        await self.wire.tap(self.names.turn_exchange, self.arrivals.on_body)
        return channel

    async def close_tap(self) -> None:
        if self.wire is not None:
            await self.wire.close()
            self.wire = None

    def start_worker(self) -> None:
        env = dict(os.environ)
        env.update(
            {
                "AMQP_URL": self.config.url,
                "SESSIONS_TOPOLOGY_PREFIX": self.names.prefix,
                "SESSIONS_SHARDS": str(self.config.shards),
                "SESSIONS_PREFETCH": str(self.config.prefetch),
                "SESSIONS_STORAGE": self.config.store,
                "SESSIONS_DB_PATH": self.db_path,
                "SESSIONS_MONGODB_DATABASE": self.mongodb_database,
                **({"MONGODB_URL": self.config.mongodb_url} if self.config.mongodb_url else {}),
                "SESSIONS_ENCRYPT_TRANSCRIPTS": "true",
                "SESSIONS_ENCRYPTION_KEYS": f"bench:{KEY}",
                "SESSIONS_METRICS_PORT": "0",
                "SESSIONS_HEARTBEAT_SECONDS": "0.5",
            }
        )
        command = [sys.executable, "-m", "worker", "worker"]
        self.processes = [
            subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(self.config.processes)
        ]

    def start_bare(self) -> None:
        args = [self.config.url, self.names.prefix, str(self.config.shards), str(self.config.prefetch)]
        command = [sys.executable, "-m", "benchmarks.bare_loop", *args]
        self.processes = [subprocess.Popen(command) for _ in range(self.config.processes)]

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)

    def rss_mb(self) -> float:
        """The largest resident set of the consumer's processes (each worker holds its own)."""
        return max(map(_rss_mb, self.pids), default=0.0)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass(frozen=True, slots=True)
class Drain:
    """A drained case: its rate, and each party's CPU per message (None where /proc is unreadable)."""

    rate: float
    cpu: cpu.Use | None


async def drain(
    connection: aio_pika.abc.AbstractConnection, case: Case, start: Callable[[], None], slots: int
) -> Drain:
    """Pre-load the queues, start the consumer, and time the replies from the first to the last.
    CPU is sampled from the first reply to the 95th percent: the consumer's start-up is not a
    message's cost, and neither is the last straggler's wait."""
    channel = await case.open(connection)
    count = case.config.messages
    await publish_many(channel, case.names, 0, count, slots, "load")
    start()
    assert case.processes, "start() launches the consumer processes"
    broker = cpu.broker_pid(case.config.url)
    await case.arrivals.wait_for(1, within=600)
    first, counted = cpu.sample(case.pids, broker), case.arrivals.count
    await case.arrivals.wait_for(max(counted + 1, count * 19 // 20), within=600)
    last, measured = cpu.sample(case.pids, broker), case.arrivals.count - counted
    await case.arrivals.wait_for(count, within=600)
    # The channel stays open: it holds the tap that later phases of this case still read.
    rate = (count - 1) / max(case.arrivals.last - case.arrivals.first, 1e-9)
    return Drain(rate, cpu.per_message(first, last, measured) if first and last else None)
