"""Context-window cost against transcript length on the embedded SQLite store.

    python -m benchmarks.context [--json]

Median cost of get_context_history(max_tokens=2000) for each strategy on a session of 100
entries versus one of 100,000 (both overflow the window, with pinned entries), measured in
interleaved rounds. The cost must follow the window, not the transcript: every ratio stays
under 1.5, and the command exits with status 1 if one does not.
"""

from __future__ import annotations

import contextlib
import sqlite3
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.population import insert_entries
from benchmarks.timing import command_line, interleaved
from schemas import ContextStrategy
from worker import SessionManager, create_session_manager

SAMPLES = 200
ROUNDS = 5
MAX_TOKENS = 2000
MAX_RATIO = 1.5
STRATEGIES: tuple[ContextStrategy, ...] = ("recent", "smart", "summarize")


def _bulk_fill(db_path: Path, manager: SessionManager, session_id: str, count: int) -> None:
    """Write entries straight into SQLite: 100,000 appends one by one would dominate the run."""
    with contextlib.closing(sqlite3.connect(db_path, timeout=30)) as conn:
        insert_entries(
            conn,
            session_id,
            count,
            text=lambda seq: f"Entry {seq}: " + "some words about the topic at hand " * 5,
            tokens=manager.transcript.count_tokens,
            important_every=50,
            now=datetime(2026, 3, 3, tzinfo=UTC),
        )


async def _session_with(manager: SessionManager, db_path: Path, user: str, entries: int) -> str:
    session = await manager.get_or_create_session(user_id=user, channel_id="bench")
    _bulk_fill(db_path, manager, session.id, entries)
    return session.id


async def run(db_dir: Path) -> dict[str, float]:
    db_path = db_dir / "bench.db"
    results: dict[str, float] = {}
    async with create_session_manager(db_path=str(db_path)) as manager:
        small = await _session_with(manager, db_path, "small", 100)
        large = await _session_with(manager, db_path, "large", 100_000)
        for strategy in STRATEGIES:

            def window(sid: str, strategy: ContextStrategy = strategy) -> Callable[[], Awaitable[object]]:
                return lambda: manager.get_context_history(sid, max_tokens=MAX_TOKENS, strategy=strategy)

            cost_small, cost_large = await interleaved(window(small), window(large), samples=SAMPLES, rounds=ROUNDS)
            results[f"{strategy}_us_100"] = cost_small
            results[f"{strategy}_us_100000"] = cost_large
            results[f"{strategy}_ratio"] = cost_large / cost_small
    return results


def main() -> None:
    results = command_line(__doc__, lambda tmp, _: run(tmp))
    over = [name for name, value in results.items() if name.endswith("_ratio") and value >= MAX_RATIO]
    if over:
        print(f"cost grows with the transcript: {', '.join(over)} at or over {MAX_RATIO}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
