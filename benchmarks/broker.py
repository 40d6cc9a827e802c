"""`sessions bench`: the worker against a bare aio-pika loop on the real broker, side by side.

Cases (each with a fresh topology, store and consumer processes, as many on each side: one per
core by default, as workers are deployed):
  bare      the reference loop: consume, publish one reply with confirms, ack
  worker    inbound user messages of ~200 bytes over 1,000 slots, encryption on, SQLite, quorum
            shard queues, one turn event published per message, confirms on (100 sessions stored)
  sessions  the same with 100,000 sessions stored
  empty / long   the same over fewer slots whose transcripts are empty / 10,000 entries long
then, on the last round's processes: publish-to-reply latency of both sides at fractions of the
worker's measured maximum rate, half among them (benchmarks/latency.py), and the worker's RSS over
many events; and last, the worker's engine alone in this process,
without a broker (benchmarks/pipeline.py), to split the worker's CPU per message into its own
work and the AMQP around it.

Bare and worker alternate for several rounds: the throughput figures are the medians, and the
ratio is the median of each round's worker / bare, so that a noisy stretch of a shared machine
hits both sides of a ratio alike. When the sides run several processes, one more bare / worker
pair runs first with a single process each, reported beside them. The cases themselves are in
benchmarks/cases.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aio_pika

from benchmarks import cpu
from benchmarks.cases import KEY, BenchConfig, Case, Drain, drain, publish_many
from benchmarks.latency import curve
from benchmarks.pipeline import engine_cpu
from benchmarks.population import populate
from worker.amqp.topology import delete_topology
from worker.crypto import EncryptingCodec, KeyRing

Prepare = Callable[[Case], None]


async def memory(connection: aio_pika.abc.AbstractConnection, case: Case, events: int) -> dict[str, Any]:
    """RSS of the largest worker process while they handle `events` more events, sampled every tenth."""
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
    """Every phase; the cases' stores go to config.workdir, or to a temporary directory removed at the end."""
    if config.workdir is None:
        with tempfile.TemporaryDirectory(prefix="sessions-bench-") as scratch:
            return await _run(dataclasses.replace(config, workdir=Path(scratch)), progress)
    return await _run(config, progress)


async def _run(config: BenchConfig, progress: Callable[[str], None]) -> dict[str, Any]:
    results: dict[str, Any] = {
        "processes": config.processes,
        "messages_per_case": config.messages,
        "slots": config.slots,
        "shards": config.shards,
        "prefetch": config.prefetch,
        "rounds": config.rounds,
    }
    codec = EncryptingCodec(KeyRing.parse(f"bench:{KEY}"))
    connection = await aio_pika.connect_robust(config.url)
    try:
        bare_case, worker_case = await _throughput(connection, config, codec, results, progress)
        try:
            progress("latency, bare loop and worker, at " + ", ".join(map(str, config.latency_fractions)) + " of max")
            rate, seconds = results["worker_msgs_per_s"], config.latency_seconds
            results.update(await curve(connection, bare_case, worker_case, rate, config.latency_fractions, seconds))
            await _close(connection, bare_case)
            progress(f"memory over {config.memory_events} events")
            results.update(await memory(connection, worker_case, config.memory_events))
        finally:
            await _close(connection, bare_case)
            await _close(connection, worker_case)
        results.update(await _growth(connection, config, codec, progress))
    finally:
        await connection.close()
    progress("the worker's engine alone, without a broker")
    assert config.workdir is not None, "run() provides the scratch directory"
    in_flight = config.prefetch * config.shards
    results["engine_cpu_us_per_msg"] = await engine_cpu(
        config.workdir, events=config.messages, slots=config.slots, in_flight=in_flight
    )
    return results


def _stored(codec: EncryptingCodec, *, sessions: int = 100, long_slots: int = 0, entries: int = 0) -> Prepare:
    """Pre-fill a case's store: `sessions` idle sessions, `long_slots` slots of `entries` entries."""
    return lambda case: populate(
        case.db_path, idle_sessions=sessions, long_slots=long_slots, entries_per_slot=entries, codec=codec
    )


async def _drain(
    connection: Any,
    config: BenchConfig,
    name: str,
    progress: Callable[[str], None],
    *,
    prepare: Prepare | None = None,
    slots: int | None = None,
    bare: bool = False,
) -> tuple[Case, Drain]:
    """A fresh case, prepared, its queues pre-loaded and drained by new consumer processes (the
    worker, or the bare loop): the case, still running, and its rate and CPU use."""
    case = Case(config, name)
    if prepare is not None:
        prepare(case)
    progress(f"{name} case")
    try:
        start = case.start_bare if bare else case.start_worker
        return case, await drain(connection, case, start, slots or config.slots)
    except BaseException:
        await _close(connection, case)
        raise


async def _rate(
    connection: Any,
    config: BenchConfig,
    name: str,
    progress: Callable[[str], None],
    *,
    prepare: Prepare | None = None,
    slots: int | None = None,
    bare: bool = False,
) -> Drain:
    """What _drain measures, with the case closed afterwards."""
    case, drained = await _drain(connection, config, name, progress, prepare=prepare, slots=slots, bare=bare)
    await _close(connection, case)
    return drained


async def _close(connection: Any, case: Case) -> None:
    case.stop()
    await delete_topology(connection, case.names)


async def _close_all(connection: Any, cases: list[Case]) -> None:
    for case in cases:
        await _close(connection, case)


async def _throughput(
    connection: Any,
    config: BenchConfig,
    codec: EncryptingCodec,
    results: dict[str, Any],
    progress: Callable[[str], None],
) -> tuple[Case, Case]:
    """Bare loop, then worker, `rounds` times; returns the last round's bare and worker cases,
    still running (the latency phase measures both, the memory phase the worker). First, if the
    sides run several processes, one bare / worker pair of a single process each."""
    if config.processes > 1:
        results.update(await _single_process(connection, dataclasses.replace(config, processes=1), codec, progress))
    rounds: list[dict[str, Any]] = []
    running: list[Case] = []  # the last round's cases
    try:
        for number in range(1, config.rounds + 1):
            await _close_all(connection, running)
            bare_case, bare = await _drain(connection, config, f"bare-{number}", progress, bare=True)
            running = [bare_case]
            worker_case, worker = await _drain(connection, config, f"worker-{number}", progress, prepare=_stored(codec))
            running.append(worker_case)
            rounds.append(
                {
                    "bare": round(bare.rate, 1),
                    "worker": round(worker.rate, 1),
                    "ratio": round(worker.rate / bare.rate, 3),
                    "bare_cpu": bare.cpu,
                    "worker_cpu": worker.cpu,
                }
            )
    except BaseException:
        await _close_all(connection, running)
        raise
    results["throughput_rounds"] = rounds
    results["bare_loop_msgs_per_s"] = statistics.median(r["bare"] for r in rounds)
    results["worker_msgs_per_s"] = statistics.median(r["worker"] for r in rounds)
    results["throughput_ratio_vs_bare_loop"] = statistics.median(r["ratio"] for r in rounds)
    results.update(cpu.summary([(r["bare_cpu"], r["worker_cpu"]) for r in rounds]))
    bare_case, worker_case = running
    return bare_case, worker_case


async def _single_process(
    connection: Any, config: BenchConfig, codec: EncryptingCodec, progress: Callable[[str], None]
) -> dict[str, float]:
    """One bare / worker pair with a single consumer process on each side."""
    bare = await _rate(connection, config, "bare-single", progress, bare=True)
    worker = await _rate(connection, config, "worker-single", progress, prepare=_stored(codec))
    return {
        "single_process_bare_msgs_per_s": round(bare.rate, 1),
        "single_process_worker_msgs_per_s": round(worker.rate, 1),
        "single_process_ratio": round(worker.rate / bare.rate, 3),
    }


async def _growth(
    connection: Any, config: BenchConfig, codec: EncryptingCodec, progress: Callable[[str], None]
) -> dict[str, float]:
    """The worker with many sessions stored versus few, and with long transcripts versus empty."""
    long_slots, entries = config.long_slots, config.transcript_entries
    few = await _rate(connection, config, "sessions-100", progress, prepare=_stored(codec))
    many = await _rate(
        connection,
        config,
        f"sessions-{config.stored_sessions}",
        progress,
        prepare=_stored(codec, sessions=config.stored_sessions),
    )
    empty = await _rate(
        connection,
        config,
        "transcripts-empty",
        progress,
        prepare=_stored(codec, long_slots=long_slots),
        slots=long_slots,
    )
    long = await _rate(
        connection,
        config,
        f"transcripts-{entries}",
        progress,
        prepare=_stored(codec, long_slots=long_slots, entries=entries),
        slots=long_slots,
    )
    return {
        "sessions_100_msgs_per_s": few.rate,
        "sessions_many_msgs_per_s": many.rate,
        "growth_ratio_sessions": many.rate / few.rate,
        "transcripts_empty_msgs_per_s": empty.rate,
        "transcripts_long_msgs_per_s": long.rate,
        "growth_ratio_transcript": long.rate / empty.rate,
    }


def run_sync(config: BenchConfig, progress: Callable[[str], None]) -> dict[str, Any]:
    return asyncio.run(run(config, progress))
