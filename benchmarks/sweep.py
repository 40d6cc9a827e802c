"""How many sessions a scheduler sweep examines per second, on SQLite with 100,000 sessions.

    python -m benchmarks.sweep [--sessions 100000] [--json]

Every session is idle past the reset threshold (the worst case: all are examined and all emit an
event). The emit step collects events in memory, so this measures the sweep, not the broker.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.timing import command_line
from scheduler.sweeps import Sweeper
from schemas import AgentSettings, ResetPolicy, RetentionPolicy, SessionEntry
from schemas.events import EventBase
from worker.engine.clock import ManualClock
from worker.sessions.agents import AgentDirectory
from worker.stores.sqlite import SqliteStore


async def populate(store: SqliteStore, count: int, start: datetime) -> None:
    batch = []
    for n in range(count):
        moment = start + timedelta(milliseconds=n)
        batch.append(
            store.insert_session(
                SessionEntry(
                    id=f"s_{n:08d}",
                    key=f"agent:main:bench:peer:{n}",
                    agent_id="main",
                    generation=1,
                    created_at=moment,
                    updated_at=moment,
                    last_activity_at=moment,
                    last_seq=1,
                    message_count=1,
                )
            )
        )
        if len(batch) == 1000:
            await asyncio.gather(*batch)
            batch = []
    await asyncio.gather(*batch)


async def run(db_dir: Path, sessions: int) -> dict[str, float]:
    store = SqliteStore.at_path(str(db_dir / "sweep.db"))
    await store.ensure_schema()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    await populate(store, sessions, start)
    clock = ManualClock(start + timedelta(days=2))
    defaults = AgentSettings(
        reset=ResetPolicy(mode="idle", idle_minutes=30),
        retention=RetentionPolicy(max_age="1d", max_inactive="1d", keep_minimum=10),
    )
    emitted: list[EventBase] = []

    async def emit(event: EventBase, routing_key: str) -> None:
        emitted.append(event)

    sweeper = Sweeper(store, AgentDirectory(store, defaults), clock, emit)
    began = time.perf_counter()
    reset = await sweeper.reset_sweep()
    reset_seconds = time.perf_counter() - began
    began = time.perf_counter()
    retention = await sweeper.retention_sweep()
    retention_seconds = time.perf_counter() - began
    await store.close()
    return {
        "sessions_stored": sessions,
        "reset_sweep_examined": reset.examined,
        "reset_sweep_seconds": reset_seconds,
        "reset_sweep_sessions_per_s": reset.examined / reset_seconds,
        "retention_sweep_examined": retention.examined,
        "retention_sweep_seconds": retention_seconds,
        "retention_sweep_sessions_per_s": retention.examined / retention_seconds,
    }


def main() -> None:
    command_line(
        __doc__,
        lambda tmp, args: run(tmp, args.sessions),
        lambda parser: parser.add_argument("--sessions", type=int, default=100_000),
    )


if __name__ == "__main__":
    main()
