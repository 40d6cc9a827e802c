"""Engine cost growth on the embedded SQLite store.

    python -m benchmarks.engine [--json]

Measures, side by side in one run: add_message and get_history(limit=50) on a session holding
10 entries versus 10,000, and one list_sessions page with 10,000 sessions stored.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.timing import command_line, interleaved, timed
from worker import SessionManager, create_session_manager

SAMPLES = 300


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


def main() -> None:
    command_line(__doc__, lambda tmp, _: run(tmp))


if __name__ == "__main__":
    main()
