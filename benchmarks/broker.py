"""`sessions bench`: the worker against a bare aio-pika loop on the real broker, side by side.

Cases (each with a fresh topology, store and consumer processes, as many on each side: one per
core by default, as workers are deployed):
  bare      the reference loop: consume, publish one reply with confirms, ack
  worker    inbound user messages of ~200 bytes over 1,000 slots, encryption on, SQLite, quorum
            shard queues, one turn event published per message, confirms on (100 sessions stored)
  sessions  the same with 100,000 sessions stored
  empty / long   the same over fewer slots whose transcripts are empty / 10,000 entries long
then publish-to-reply latency of both sides at fractions of the worker's measured maximum rate,
half among them (benchmarks/latency.py), each side on a case of its own, with the worker's stage
breakdown from its stage log (benchmarks/stages.py), and the worker's RSS over many events on its
latency case; the same bare / worker pairs at each backlog depth of config.backlogs, reported with
the live maxima (benchmarks/backlogs.py); the growth cases; one worker's RSS as new chats write, up
to and past its session cache's size (benchmarks/chats.py); the worker case with redaction on and
off (benchmarks/redaction_cost.py); and last, the worker's engine alone in this process, without a
broker (benchmarks/pipeline.py), to split the worker's CPU per message into its own work and the
AMQP around it.

Bare and worker alternate for several rounds, which of them goes first alternating too: the
throughput figures are the medians, and the ratio is the median of each round's worker / bare,
so that a noisy stretch of a shared machine hits both sides of a ratio alike. The growth cases
run in pairs in the same way. When the sides run several processes, one more bare / worker pair
runs first with a single process each, reported beside them. The cases themselves are in
benchmarks/cases.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import statistics
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aio_pika

from benchmarks import backlogs, chats, cpu, mongodb, redaction_cost
from benchmarks.cases import KEY, BenchConfig, Case, Drain, drain
from benchmarks.chats import memory
from benchmarks.latency import curve, live_maximum
from benchmarks.pipeline import engine_cpu
from benchmarks.population import prefill
from schemas.settings import CIPHER_CACHE_SIZE
from worker.amqp.topology import delete_topology
from worker.engine.crypto import EncryptingCodec, KeyRing

Prepare = Callable[[Case], None]


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
    if config.store == "mongodb":
        return await _run_on_mongodb(config, codec, results, progress)
    connection = await aio_pika.connect_robust(config.url)
    try:
        await _throughput(connection, config, codec, results, progress)
        by_depth = await _backlogs(connection, config, codec, results["throughput_rounds"], progress)
        maxima = (results["worker_msgs_per_s"], results["bare_loop_msgs_per_s"])
        results.update(await _latency_and_memory(connection, config, codec, maxima, progress))
        results["throughput"] = backlogs.with_live(by_depth, results)
        results["lowest_throughput_ratio"] = backlogs.lowest_ratio(results["throughput"])
        results.update(await _growth(connection, config, codec, progress))
        results.update(await _per_chat(connection, config, codec, progress))
        results.update(await _redaction(connection, config, codec, progress))
    finally:
        await connection.close()
    progress("the worker's engine alone, without a broker")
    assert config.workdir is not None, "run() provides the scratch directory"
    in_flight = config.prefetch * config.shards
    results["engine_cpu_us_per_msg"] = await engine_cpu(
        config.workdir, events=config.messages, slots=config.slots, in_flight=in_flight
    )
    return results


async def _run_on_mongodb(
    config: BenchConfig, codec: EncryptingCodec, results: dict[str, Any], progress: Callable[[str], None]
) -> dict[str, Any]:
    """The worker case with its store in MongoDB (what runs there: benchmarks/mongodb.py)."""
    url = config.mongodb_url
    if url is None:
        raise ValueError("a MongoDB bench run needs config.mongodb_url")
    results.update(mongodb.server(url))
    single_pair = 1 if config.processes > 1 and config.single_process_pair else 0
    drained_by_workers = config.messages * (config.rounds + single_pair)
    before = mongodb.server_requests(url)
    connection = await aio_pika.connect_robust(config.url)
    try:
        await _throughput(connection, config, codec, results, progress)
        counted = mongodb.server_requests(url)
        maxima = (results["worker_msgs_per_s"], results["bare_loop_msgs_per_s"])
        results.update(await _latency_and_memory(connection, config, codec, maxima, progress))
    finally:
        await connection.close()
    results["server_requests_per_worker_msg"] = round((counted - before) / drained_by_workers, 3)
    progress("the append path's round trips per message, counted on the wire")
    in_flight = config.prefetch * config.shards
    database = f"bench_rtt_{uuid.uuid4().hex[:8]}"
    results.update(
        await mongodb.append_round_trips(url, database, events=config.messages, slots=config.slots, in_flight=in_flight)
    )
    return results


def _stored(codec: EncryptingCodec, *, sessions: int = 100, long_slots: int = 0, entries: int = 0) -> Prepare:
    """Pre-fill a case's store: `sessions` idle sessions, `long_slots` slots of `entries` entries
    (from a template made once per run and kind, in the run's scratch directory)."""

    def prepare(case: Case) -> None:
        assert case.config.workdir is not None, "run() provides the scratch directory"
        prefill(
            case.db_path,
            case.config.workdir,
            idle_sessions=sessions,
            long_slots=long_slots,
            entries_per_slot=entries,
            codec=codec,
        )

    return prepare


async def _drain(
    connection: Any,
    config: BenchConfig,
    name: str,
    progress: Callable[[str], None],
    *,
    prepare: Prepare | None = None,
    slots: int | None = None,
    bare: bool = False,
    traced: bool = False,
) -> tuple[Case, Drain]:
    """A fresh case, prepared, its queues pre-loaded and drained by new consumer processes (the
    worker, or the bare loop): the case, still running, and its rate and CPU use. A `traced`
    worker keeps a stage log (benchmarks/stages.py)."""
    case = Case(config, name)
    if traced and config.workdir is not None:
        case.stage_dir = config.workdir / f"{name}-{case.names.prefix}-stages"
    if prepare is not None:
        prepare(case)
    progress(f"{name} case")
    try:
        start = case.start_bare if bare else case.start_worker
        return case, await drain(connection, case, start, slots or config.slots)
    except BaseException:
        # What failed is what to report: a connection the broker closed cannot clean up after it.
        with contextlib.suppress(Exception):
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
    try:
        await case.close_tap()
    finally:
        await delete_topology(connection, case.names)
        if case.config.mongodb_url is not None:  # a bare case never made its database: a no-op
            mongodb.drop(case.config.mongodb_url, case.mongodb_database)


@dataclasses.dataclass(frozen=True, slots=True)
class _Side:
    """One case of a pair: its name, how its store is pre-filled, its slots, and which consumer runs."""

    name: str
    prepare: Prepare | None = None
    slots: int | None = None
    bare: bool = False


async def _pair(
    connection: Any,
    config: BenchConfig,
    progress: Callable[[str], None],
    one: _Side,
    other: _Side,
    number: int,
    label: str | None = None,
) -> tuple[Drain, Drain]:
    """Both cases of a pair, drained one after the other: odd rounds in the order given, even rounds
    the other way round, so that whatever favours the first or the second drain of a pair (on this
    shared machine the second was faster in five of six pairs of one run) hits both sides alike.
    The cases are named after their side and `label` (by default the round's number)."""
    drained: dict[str, Drain] = {}
    for side in (one, other) if number % 2 else (other, one):
        drained[side.name] = await _rate(
            connection,
            config,
            f"{side.name}-{label or number}",
            progress,
            prepare=side.prepare,
            slots=side.slots,
            bare=side.bare,
        )
    return drained[one.name], drained[other.name]


async def _throughput(
    connection: Any,
    config: BenchConfig,
    codec: EncryptingCodec,
    results: dict[str, Any],
    progress: Callable[[str], None],
) -> None:
    """Bare loop and worker, `rounds` times, alternating which goes first. First, if the sides run
    several processes (and the config asks for it), one bare / worker pair of a single process each."""
    # MongoDB's worker case starts from an empty database: the pre-fill writes SQLite files.
    prepare = None if config.store == "mongodb" else _stored(codec)
    bare_side, worker_side = _Side("bare", bare=True), _Side("worker", prepare)
    if config.processes > 1 and config.single_process_pair:
        single = dataclasses.replace(config, processes=1)
        bare, worker = await _pair(connection, single, progress, bare_side, worker_side, 1, "single")
        results["single_process_bare_msgs_per_s"] = round(bare.rate, 1)
        results["single_process_worker_msgs_per_s"] = round(worker.rate, 1)
        results["single_process_ratio"] = round(worker.rate / bare.rate, 3)
    rounds = [
        backlogs.one_round(*await _pair(connection, config, progress, bare_side, worker_side, number))
        for number in range(1, config.rounds + 1)
    ]
    results["throughput_rounds"] = rounds
    results["bare_loop_msgs_per_s"] = statistics.median(r["bare"] for r in rounds)
    results["worker_msgs_per_s"] = statistics.median(r["worker"] for r in rounds)
    results["throughput_ratio_vs_bare_loop"] = statistics.median(r["ratio"] for r in rounds)
    results.update(cpu.summary([(r["bare_cpu"], r["worker_cpu"]) for r in rounds]))


async def _backlogs(
    connection: Any,
    config: BenchConfig,
    codec: EncryptingCodec,
    main: list[dict[str, Any]],
    progress: Callable[[str], None],
) -> dict[str, dict[str, Any]]:
    """Bare / worker pairs at each backlog depth besides the main rounds' (benchmarks/backlogs.py)."""
    progress(f"throughput at backlogs of {', '.join(map(str, config.backlogs))} messages a case")
    bare_side, worker_side = _Side("bare", bare=True), _Side("worker", _stored(codec))

    async def pair(sized: BenchConfig, number: int, label: str) -> tuple[Drain, Drain]:
        return await _pair(connection, sized, progress, bare_side, worker_side, number, label)

    return await backlogs.depths(config, pair, main)


async def _per_chat(
    connection: Any, config: BenchConfig, codec: EncryptingCodec, progress: Callable[[str], None]
) -> dict[str, Any]:
    """One worker process, its session cache capped at config.chat_cache_size, then chats it never
    saw write one message each (benchmarks/chats.py)."""
    cap = config.chat_cache_size
    ciphers = min(cap, CIPHER_CACHE_SIZE)  # full before the sessions are: what grows past the cap is not it
    env = {**config.worker_env, "SESSIONS_SESSION_CACHE_SIZE": str(cap), "SESSIONS_CIPHER_CACHE_SIZE": str(ciphers)}
    single = dataclasses.replace(config, processes=1, messages=min(config.messages, 2_000), worker_env=env)
    case, _ = await _drain(connection, single, "worker-chats", progress, prepare=_stored(codec))
    try:
        progress(f"worker RSS as {int(chats.STEPS[-1] * cap):,} new chats write (session cache of {cap:,})")
        return await chats.rss_per_chat(connection, case, cap)
    finally:
        await _close(connection, case)


async def _redaction(
    connection: Any, config: BenchConfig, codec: EncryptingCodec, progress: Callable[[str], None]
) -> dict[str, Any]:
    """The worker case with redaction on and off, alternating (benchmarks/redaction_cost.py)."""
    progress("the worker with redaction on and off")

    async def rate(sized: BenchConfig, name: str) -> Drain:
        return await _rate(connection, sized, name, progress, prepare=_stored(codec))

    return await redaction_cost.on_and_off(config, rate)


async def _latency_and_memory(
    connection: Any,
    config: BenchConfig,
    codec: EncryptingCodec,
    maxima: tuple[float, float],
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """Each side on a case of its own, warmed by a drain shorter than a round's: their live
    maxima (publisher running; `maxima` are the worker's and the bare loop's drain rates), then
    both sides' latency at the configured fractions of the worker's drain rate and at half its
    live maximum; then the worker's memory, on its case."""
    warm_up = dataclasses.replace(config, messages=min(config.messages, config.latency_warm_up))
    results: dict[str, Any] = {}
    prepare = None if config.store == "mongodb" else _stored(codec)
    worker, _ = await _drain(connection, warm_up, "worker-latency", progress, prepare=prepare, traced=True)
    try:
        bare, _ = await _drain(connection, warm_up, "bare-latency", progress, bare=True)
        try:
            progress("the live maximum of both sides (publisher running)")
            live = await live_maximum(worker, maxima[0], config.live_seconds)
            bare_live = await live_maximum(bare, maxima[1], config.live_seconds)
            results["live_max_msgs_per_s"] = round(live, 1)
            results["bare_loop_live_max_msgs_per_s"] = round(bare_live, 1)
            if bare_live > 0:
                results["live_ratio_vs_bare_loop"] = round(live / bare_live, 3)
            progress(
                f"latency of both sides at {config.latency_fractions} of the drain rate and at half the live maximum"
            )
            fractions, seconds = config.latency_fractions, config.latency_seconds
            results.update(await curve(bare, worker, maxima[0], fractions, seconds, live))
        finally:
            await _close(connection, bare)
        if config.store != "mongodb":
            progress(f"memory over {config.memory_events} events")
            results.update(await memory(connection, worker, config.memory_events))
    finally:
        await _close(connection, worker)
    return results


async def _growth(
    connection: Any, config: BenchConfig, codec: EncryptingCodec, progress: Callable[[str], None]
) -> dict[str, Any]:
    """The worker with many sessions stored versus few, and with long transcripts versus empty, in
    pairs for `rounds` rounds like the throughput cases: the rates are medians, and each growth
    ratio is the median of the rounds' own."""
    many, entries, long_slots = config.stored_sessions, config.transcript_entries, config.long_slots
    sides = {
        "sessions_100": _Side("sessions-100", _stored(codec)),
        "sessions_many": _Side("sessions-many", _stored(codec, sessions=many)),
        "transcripts_empty": _Side("transcripts-empty", _stored(codec, long_slots=long_slots), long_slots),
        "transcripts_long": _Side(
            "transcripts-long", _stored(codec, long_slots=long_slots, entries=entries), long_slots
        ),
    }
    rounds: list[dict[str, float]] = []
    for number in range(1, config.rounds + 1):
        rates = {}
        for few, more in (("sessions_100", "sessions_many"), ("transcripts_empty", "transcripts_long")):
            drained = await _pair(connection, config, progress, sides[few], sides[more], number)
            rates[few], rates[more] = (round(each.rate, 1) for each in drained)
        rounds.append(rates)
    return {
        **{f"{name}_msgs_per_s": statistics.median(r[name] for r in rounds) for name in sides},
        "growth_ratio_sessions": statistics.median(r["sessions_many"] / r["sessions_100"] for r in rounds),
        "growth_ratio_transcript": statistics.median(r["transcripts_long"] / r["transcripts_empty"] for r in rounds),
        "growth_rounds": rounds,
    }
