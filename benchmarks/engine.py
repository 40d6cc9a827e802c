"""Engine cost growth on the embedded SQLite store, and the cost of redaction per message.

    python -m benchmarks.engine [--json] [--case all|growth|redaction]

growth: side by side in one run, add_message and get_history(limit=50) on a session holding 10
entries versus 10,000, and one list_sessions page with 10,000 sessions stored.
redaction: the redaction engine alone on ordinary messages (the worker case's text and other
everyday ones, none holding a secret), per message; and add_message with redaction on versus off
for the same text, interleaved, in one store.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from benchmarks.cases import TEXT
from benchmarks.timing import command_line, interleaved, timed
from worker import SessionManager, create_session_manager
from worker.engine.redaction import Findings, Redactor

SAMPLES = 300
# Everyday messages without secrets: what nearly every message costs is the pre-filter's verdict.
ORDINARY = (
    TEXT,
    "Thanks! That worked. Now can you summarise the thread from yesterday for the team, keeping it short?",
    "Meeting moved to 10:30 on 2026-03-04, room B12. Ask Anna about the Q3 numbers and the SKU list (AB-1234).",
    "def handler(event):\n    return {'status': 200, 'body': json.dumps(event['Records'])}  # Lambda in us-east-1",
    "My order 112-4567890-1234567 has not arrived; the tracking says 1Z999AA10123456784 since Monday.",
    "Can you translate this into German: the quick brown fox jumps over the lazy dog, twice.",
)


async def _session_with(manager: SessionManager, user: str, entries: int) -> str:
    session = await manager.get_or_create_session(user_id=user, channel_id="bench")
    for n in range(entries):
        await manager.add_message(session.id, "user" if n % 2 else "assistant", f"message number {n} " * 8)
    return session.id


async def run(db_dir: Path) -> dict[str, float]:
    async with create_session_manager(db_path=str(db_dir / "bench.db")) as manager:
        small = await _session_with(manager, "small", 10)
        large = await _session_with(manager, "large", 10_000)
        add_small, add_large = await interleaved(
            lambda: manager.add_message(small, "user", "x" * 200),
            lambda: manager.add_message(large, "user", "x" * 200),
            samples=SAMPLES,
        )
        hist_small, hist_large = await interleaved(
            lambda: manager.get_history(small, limit=50), lambda: manager.get_history(large, limit=50), samples=SAMPLES
        )
        for n in range(10_000):
            await manager.get_or_create_session(user_id=f"user-{n}", channel_id="bench")
        page = await timed(lambda: manager.list_sessions(agent_id="main", limit=50), 100)
        return {
            "add_message_us_10": add_small,
            "add_message_us_10000": add_large,
            "add_message_ratio": add_large / add_small,
            "get_history50_us_10": hist_small,
            "get_history50_us_10000": hist_large,
            "get_history_ratio": hist_large / hist_small,
            "list_sessions_page_us_10000_sessions": page,
        }


def redaction_us_per_message(texts: tuple[str, ...] = ORDINARY, rounds: int = 9, passes: int = 2000) -> float:
    """The engine's CPU cost on a message of `texts` (µs, this thread's CPU time, so that other
    processes on a shared machine count less): the median of rounds over all of them."""
    redactor = Redactor()
    costs = []
    for _ in range(rounds):
        started = time.thread_time()
        for _ in range(passes):
            for text in texts:
                redactor.text(text, Findings())
        costs.append((time.thread_time() - started) / (passes * len(texts)))
    return statistics.median(costs) * 1e6


async def run_redaction(db_dir: Path) -> dict[str, float]:
    async with create_session_manager(db_path=str(db_dir / "redaction.db")) as manager:
        await manager.agents.update("raw", redaction={"enabled": False})
        on = await _session_with(manager, "on", 10)
        off = (await manager.get_or_create_session(user_id="off", channel_id="bench", agent_id="raw")).id
        add_on, add_off = await interleaved(
            lambda: manager.add_message(on, "user", TEXT),
            lambda: manager.add_message(off, "user", TEXT),
            samples=SAMPLES * 4,
            rounds=10,
        )
    return {
        "redaction_us_per_ordinary_message": redaction_us_per_message(),
        "redaction_us_per_bench_message": redaction_us_per_message((TEXT,)),  # the worker case's text
        "add_message_us_redaction_on": add_on,
        "add_message_us_redaction_off": add_off,
        "add_message_on_over_off": add_on / add_off,
    }


async def run_cases(db_dir: Path, case: str) -> dict[str, float]:
    results: dict[str, float] = {}
    if case in ("all", "growth"):
        results.update(await run(db_dir))
    if case in ("all", "redaction"):
        results.update(await run_redaction(db_dir))
    return results


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--case", choices=("all", "growth", "redaction"), default="all", help="which cases to run")


def main() -> None:
    command_line(__doc__, lambda tmp, args: run_cases(tmp, args.case), _options)


if __name__ == "__main__":
    main()
