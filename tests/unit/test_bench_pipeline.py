"""The engine-alone benchmark really applies every event: sealed entries in the store, one per event."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest

from benchmarks import pipeline
from benchmarks.pipeline import STORED_SESSIONS, WARM_UP, engine_cpu


async def test_every_event_is_applied_sealed_and_its_cpu_counted(tmp_path: Path) -> None:
    use = await engine_cpu(tmp_path, events=300, slots=30, in_flight=16)

    with sqlite3.connect(tmp_path / "pipeline.db") as conn:
        entries = conn.execute("SELECT COUNT(*), COUNT(DISTINCT event_id), MIN(key_id) FROM entries").fetchone()
        sessions = conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
    assert entries == (WARM_UP + 300, WARM_UP + 300, "bench")  # each event once, sealed with the bench key
    assert sessions == STORED_SESSIONS + 30  # one per slot, beside the stored ones
    assert use["loop_thread_us"] > 0 and use["other_threads_us"] >= 0  # commits run on the loop when they can
    assert use["total_us"] == pytest.approx(use["loop_thread_us"] + use["other_threads_us"], abs=0.2)


def test_the_command_line_takes_the_number_in_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []

    async def run(workdir: Path, in_flight: int = 0) -> dict[str, float]:
        seen.append(in_flight)
        return {"engine_total_us_per_event": 1.0}

    monkeypatch.setattr(pipeline, "run", run)
    monkeypatch.setattr(sys, "argv", ["pipeline", "--in-flight", "1"])
    pipeline.main()
    assert seen == [1]
