"""`sessions bench`: the worker against a bare aio-pika loop on the real broker, side by side.

Cases (each with a fresh topology, store and process):
  bare      the reference loop: consume, publish one reply with confirms, ack
  worker    inbound user messages of ~200 bytes over 1,000 slots, encryption on, SQLite, quorum
            shard queues, one turn event published per message, confirms on (100 sessions stored)
  (bare and worker alternate for several rounds: the throughput figures are the medians, and the
  ratio is the median of each round's worker / bare, so that a noisy stretch of a shared machine
  hits both sides of a ratio alike)
  sessions  the same with 100,000 sessions stored
  empty / long   the same over fewer slots whose transcripts are empty / 10,000 entries long
then, on the worker case's process: publish-to-reply latency at half its measured maximum rate,
and RSS over many events.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from benchmarks.population import BENCH_CHANNEL, populate, slot_key, slot_user
from schemas.events import ChatSource, InboundMessage
from schemas.topology import Topology
from worker.amqp.publisher import json_message
from worker.amqp.topology import declare_topology, delete_topology
from worker.crypto import EncryptingCodec, KeyRing

KEY = base64.b64encode(b"bench-master-key-32-bytes-long!!").decode()
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
    memory_events: int = 200_000
    rounds: int = 3
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="sessions-bench-")))

    @classmethod
    def quick(cls, url: str) -> BenchConfig:
        """Every phase at small counts, within about a minute (a smoke run: its figures are rough)."""
        return cls(
            url,
            messages=2_000,
            stored_sessions=100_000,
            long_slots=10,
            latency_seconds=2.5,
            memory_events=4_000,
            rounds=1,
        )


class Arrivals:
    """Replies seen on a tap queue: count, first/last arrival, and arrival time per answered id."""

    def __init__(self) -> None:
        self.count = 0
        self.first = 0.0
        self.last = 0.0
        self.by_id: dict[str, float] = {}
        # Only the latency phase needs to know which message a reply answers; reading that costs
        # a JSON parse per reply, which the throughput phases leave out (the machine is shared).
        self.track_ids = False
        self._wake = asyncio.Event()

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        now = time.perf_counter()
        self.first = self.first or now
        self.last = now
        self.count += 1
        if self.track_ids:
            answered = message.message_id or ""
            if message.body.startswith(b"{") and b'"inReplyTo"' in message.body:
                answered = json.loads(message.body).get("inReplyTo", answered)
            self.by_id[answered] = now
        self._wake.set()

    async def wait_for(self, count: int, within: float) -> None:
        deadline = time.perf_counter() + within
        while self.count < count:
            self._wake.clear()
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise TimeoutError(f"only {self.count} of {count} replies arrived")
            try:
                async with asyncio.timeout(min(remaining, 1.0)):
                    await self._wake.wait()
            except TimeoutError:
                continue


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
        self.db_path = str(config.workdir / f"{name}.db")
        self.process: subprocess.Popen[bytes] | None = None
        self.arrivals = Arrivals()

    async def open(self, connection: aio_pika.abc.AbstractConnection) -> AbstractChannel:
        channel = await connection.channel(publisher_confirms=True)
        await declare_topology(channel, self.names, delivery_limit=20)
        tap = await channel.declare_queue("", exclusive=True, auto_delete=True)
        await tap.bind(await channel.get_exchange(self.names.turn_exchange), routing_key="#")
        await tap.consume(self.arrivals.on_message, no_ack=True)
        return channel

    def start_worker(self) -> None:
        env = dict(os.environ)
        env.update(
            {
                "AMQP_URL": self.config.url,
                "SESSIONS_TOPOLOGY_PREFIX": self.names.prefix,
                "SESSIONS_SHARDS": str(self.config.shards),
                "SESSIONS_PREFETCH": str(self.config.prefetch),
                "SESSIONS_STORAGE": "sqlite",
                "SESSIONS_DB_PATH": self.db_path,
                "SESSIONS_ENCRYPT_TRANSCRIPTS": "true",
                "SESSIONS_ENCRYPTION_KEYS": f"bench:{KEY}",
                "SESSIONS_METRICS_PORT": "0",
                "SESSIONS_HEARTBEAT_SECONDS": "0.5",
            }
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "worker", "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def start_bare(self) -> None:
        args = [self.config.url, self.names.prefix, str(self.config.shards), str(self.config.prefetch)]
        self.process = subprocess.Popen([sys.executable, "-m", "benchmarks.bare_loop", *args])

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def rss_mb(self) -> float:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0


async def drain_rate(
    connection: aio_pika.abc.AbstractConnection, case: Case, start: Callable[[], None], slots: int
) -> float:
    """Pre-load the queues, start the consumer, and time the replies from the first to the last."""
    channel = await case.open(connection)
    count = case.config.messages
    await publish_many(channel, case.names, 0, count, slots, "load")
    start()
    await case.arrivals.wait_for(count, within=600)
    # The channel stays open: it holds the tap that later phases of this case still read.
    return (count - 1) / max(case.arrivals.last - case.arrivals.first, 1e-9)


async def latency(
    connection: aio_pika.abc.AbstractConnection, case: Case, rate: float, seconds: float
) -> dict[str, float]:
    """Publish at `rate` per second and measure publish-to-reply time of each message."""
    channel = await connection.channel(publisher_confirms=False)
    exchange = await channel.get_exchange(case.names.inbound_exchange)
    sent: dict[str, float] = {}
    total = int(rate * seconds)
    case.arrivals.track_ids = True
    began = time.perf_counter()
    for index in range(total):
        event, key = inbound(index, case.config.slots, "lat")
        delay = began + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sent[event.event_id] = time.perf_counter()
        await exchange.publish(json_message(event), routing_key=key)
    with contextlib.suppress(TimeoutError):  # measured on what arrived; the sample count says how many
        await case.arrivals.wait_for(case.arrivals.count + sum(e not in case.arrivals.by_id for e in sent), within=60)
    waits = sorted((case.arrivals.by_id[e] - t) * 1000 for e, t in sent.items() if e in case.arrivals.by_id)
    case.arrivals.track_ids = False
    await channel.close()
    return {
        "latency_rate_msgs_per_s": rate,
        "p50_ms": statistics.median(waits),
        "p99_ms": waits[min(len(waits) - 1, int(len(waits) * 0.99))],
        "latency_samples": len(waits),
    }


async def memory(connection: aio_pika.abc.AbstractConnection, case: Case, events: int) -> dict[str, Any]:
    """RSS of the worker process while it handles `events` more events, sampled every tenth."""
    channel = await connection.channel(publisher_confirms=True)
    samples: list[tuple[int, float]] = []
    step = max(events // 10, 1)
    already = case.arrivals.count
    for start in range(0, events, step):
        await publish_many(channel, case.names, start, step, case.config.slots, "mem")
        await case.arrivals.wait_for(already + start + step, within=600)
        samples.append((start + step, round(case.rss_mb(), 1)))
    await channel.close()
    settled = [rss for _, rss in samples[len(samples) // 3 :]]
    return {"rss_samples": samples, "rss_mb": samples[-1][1], "rss_growth_after_warmup": settled[-1] / settled[0]}


async def run(config: BenchConfig, progress: Callable[[str], None] = print) -> dict[str, Any]:
    results: dict[str, Any] = {
        "messages_per_case": config.messages,
        "slots": config.slots,
        "shards": config.shards,
        "prefetch": config.prefetch,
        "rounds": config.rounds,
    }
    codec = EncryptingCodec(KeyRing.parse(f"bench:{KEY}"))
    connection = await aio_pika.connect_robust(config.url)
    try:
        worker_case = await _throughput(connection, config, codec, results, progress)
        progress("latency at half the maximum rate")
        results.update(await latency(connection, worker_case, results["worker_msgs_per_s"] / 2, config.latency_seconds))
        progress(f"memory over {config.memory_events} events")
        results.update(await memory(connection, worker_case, config.memory_events))
        worker_case.stop()
        await delete_topology(connection, worker_case.names)
        results.update(await _growth(connection, config, codec, progress))
    finally:
        await connection.close()
    return results


async def _throughput(
    connection: Any,
    config: BenchConfig,
    codec: EncryptingCodec,
    results: dict[str, Any],
    progress: Callable[[str], None],
) -> Case:
    """Bare loop, then worker, `rounds` times; returns the last worker case, still running (the
    latency and memory phases measure that process)."""
    rounds: list[dict[str, float]] = []
    worker_case: Case | None = None
    for number in range(1, config.rounds + 1):
        bare = await _case(connection, config, f"bare-{number}", "bare", progress)
        if worker_case is not None:
            worker_case.stop()
            await delete_topology(connection, worker_case.names)
        worker_case = Case(config, f"worker-{number}")
        populate(worker_case.db_path, idle_sessions=100, long_slots=0, entries_per_slot=0, codec=codec)
        progress(f"worker-{number} case (100 sessions stored)")
        worker = await drain_rate(connection, worker_case, worker_case.start_worker, config.slots)
        rounds.append({"bare": round(bare, 1), "worker": round(worker, 1), "ratio": round(worker / bare, 3)})
    assert worker_case is not None, "at least one round"
    results["throughput_rounds"] = rounds
    results["bare_loop_msgs_per_s"] = statistics.median(r["bare"] for r in rounds)
    results["worker_msgs_per_s"] = statistics.median(r["worker"] for r in rounds)
    results["throughput_ratio_vs_bare_loop"] = statistics.median(r["ratio"] for r in rounds)
    return worker_case


async def _case(
    connection: Any,
    config: BenchConfig,
    name: str,
    kind: str,
    progress: Callable[[str], None],
    slots: int | None = None,
) -> float:
    progress(f"{name} case")
    case = Case(config, name)
    try:
        starter = case.start_bare if kind == "bare" else case.start_worker
        return await drain_rate(connection, case, starter, slots or config.slots)
    finally:
        case.stop()
        await delete_topology(connection, case.names)


async def _prepared(
    connection: Any,
    config: BenchConfig,
    name: str,
    slots: int,
    prepare: Callable[[Case], None],
    progress: Callable[[str], None],
) -> float:
    case = Case(config, name)
    prepare(case)
    progress(f"{name} case")
    try:
        return await drain_rate(connection, case, case.start_worker, slots)
    finally:
        case.stop()
        await delete_topology(connection, case.names)


async def _growth(
    connection: Any, config: BenchConfig, codec: EncryptingCodec, progress: Callable[[str], None]
) -> dict[str, float]:
    few = await _prepared(
        connection,
        config,
        "sessions-100",
        config.slots,
        lambda c: populate(c.db_path, idle_sessions=100, long_slots=0, entries_per_slot=0, codec=codec),
        progress,
    )
    many = await _prepared(
        connection,
        config,
        f"sessions-{config.stored_sessions}",
        config.slots,
        lambda c: populate(
            c.db_path, idle_sessions=config.stored_sessions, long_slots=0, entries_per_slot=0, codec=codec
        ),
        progress,
    )
    empty = await _prepared(
        connection,
        config,
        "transcripts-empty",
        config.long_slots,
        lambda c: populate(c.db_path, idle_sessions=100, long_slots=config.long_slots, entries_per_slot=0, codec=codec),
        progress,
    )
    long = await _prepared(
        connection,
        config,
        f"transcripts-{config.transcript_entries}",
        config.long_slots,
        lambda c: populate(
            c.db_path,
            idle_sessions=100,
            long_slots=config.long_slots,
            entries_per_slot=config.transcript_entries,
            codec=codec,
        ),
        progress,
    )
    return {
        "sessions_100_msgs_per_s": few,
        "sessions_many_msgs_per_s": many,
        "growth_ratio_sessions": many / few,
        "transcripts_empty_msgs_per_s": empty,
        "transcripts_long_msgs_per_s": long,
        "growth_ratio_transcript": long / empty,
    }


def run_sync(config: BenchConfig, progress: Callable[[str], None]) -> dict[str, Any]:
    return asyncio.run(run(config, progress))
