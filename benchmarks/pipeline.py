"""The worker's own work per event, without a broker: what `sessions bench` splits the drain by.

    python -m benchmarks.pipeline [--json] [--in-flight N]

The worker case's events (about 200 bytes of text over 1,000 slots, SQLite, encryption on, 100
sessions stored) go through what the worker does between a delivery and its publish: decode the
body, apply it (resolve the slot's session, seal and append the entry, group-commit), record the
outcome where a replay could not rebuild it, and encode the turn event's frame body. As many are
in flight at once as the worker case's 16 shards at a prefetch of 64 let the worker hold. No AMQP
at all: the difference between this and the worker's drain is the consuming, publishing and
acking around it.

CPU is read per thread of this process: the event-loop thread, and the others (SQLite's).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from benchmarks import cpu
from benchmarks.cases import KEY, inbound
from benchmarks.population import populate
from benchmarks.timing import command_line
from schemas.events import INBOUND_EVENT
from worker import create_session_manager
from worker.amqp.publisher import json_message, outbound
from worker.app.gc_tuning import tune_collector
from worker.config import Settings
from worker.engine.clock import system_clock
from worker.engine.crypto import EncryptingCodec, KeyRing
from worker.engine.idempotency import identify
from worker.service.outcome_log import OutcomeLog
from worker.service.processor import EventProcessor

EVENTS, SLOTS, IN_FLIGHT, STORED_SESSIONS = 20_000, 1_000, 16 * 64, 100
WARM_UP = 500  # tiktoken's first counts, the first sessions' keys: start-up, not a message's cost


def bodies(tag: str, count: int, slots: int) -> list[bytes]:
    """The bench's inbound events, as the worker receives them."""
    return [json_message(inbound(index, slots, tag)[0]).body for index in range(count)]


async def engine_cpu(workdir: Path, *, events: int = EVENTS, slots: int = SLOTS, in_flight: int = IN_FLIGHT) -> cpu.Use:
    """Each thread group's CPU per event (µs), their total, and the wall time per event."""
    db_path = workdir / "pipeline.db"
    codec = EncryptingCodec(KeyRing.parse(f"bench:{KEY}"))
    populate(str(db_path), idle_sessions=STORED_SESSIONS, long_slots=0, entries_per_slot=0, codec=codec)
    settings = Settings()
    manager = create_session_manager(db_path=str(db_path), codec=codec)  # seals, as the worker case does
    async with manager:
        processor = EventProcessor(manager, system_clock, max_reply_chars=settings.max_reply_chars)
        outcomes = OutcomeLog(manager.store, manager.transcript.codec, system_clock)
        handle = engine_handler(processor, outcomes)
        await apply_all(handle, bodies("warm", WARM_UP, slots), in_flight)
        measured = bodies("engine", events, slots)
        tune_collector(settings.advanced.gc_young_threshold)  # the worker's collector settings
        wall, main, every = time.perf_counter(), time.thread_time(), time.process_time()
        await apply_all(handle, measured, in_flight)
        wall, main, every = time.perf_counter() - wall, time.thread_time() - main, time.process_time() - every

    def micros(seconds: float) -> float:
        return round(seconds / events * 1e6, 1)

    return {
        "loop_thread_us": micros(main),
        "other_threads_us": micros(every - main),
        "total_us": micros(every),
        "wall_us": micros(wall),
    }


def engine_handler(processor: EventProcessor, outcomes: OutcomeLog) -> Callable[[bytes], Awaitable[None]]:
    async def handle(body: bytes) -> None:
        event = INBOUND_EVENT.validate_json(body)
        identity = identify(event)
        outcome = await processor.apply(event, identity)
        if not outcome.rebuilt_on_replay:
            await outcomes.record(identity, outcome)
        for published in (*outcome.replies, *outcome.turns, *outcome.notices, *outcome.summarize):
            outbound(published)
        if not outcome.turns:
            raise RuntimeError(f"event {event.event_id} gave no turn: {outcome}")

    return handle


async def apply_all(handle: Callable[[bytes], Awaitable[None]], events: Iterable[bytes], in_flight: int) -> None:
    """Every event handled, `in_flight` at a time: as many runners, each taking the next event when
    its last is done. (A semaphore over one task per event would cost the measurement itself: its
    wake-ups walk every waiter.)"""
    pending = iter(events)

    async def runner() -> None:
        for body in pending:
            await handle(body)

    await asyncio.gather(*(runner() for _ in range(in_flight)))


async def run(workdir: Path, in_flight: int = IN_FLIGHT) -> dict[str, float]:
    used = await engine_cpu(workdir, in_flight=in_flight)
    return {f"engine_{key}_per_event": value for key, value in used.items()}


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--in-flight",
        type=int,
        default=IN_FLIGHT,
        help=f"events applied at once ({IN_FLIGHT}, as the worker case holds; 1: a trickle, no batching)",
    )


def main() -> None:
    command_line(__doc__, lambda tmp, args: run(tmp, args.in_flight), _options)


if __name__ == "__main__":
    main()
