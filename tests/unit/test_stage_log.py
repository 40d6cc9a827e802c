"""The stage log: a delivery's marks are kept only while it is traced, written once its ack had
time to go out, and read back by the benchmark into each stage's span, against its own clock."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from benchmarks.report import stage_rows, stage_title
from benchmarks.stages import breakdown, read_rows
from worker.amqp.stage_log import StageLog
from worker.engine import stages


def test_a_mark_outside_a_traced_delivery_records_nothing() -> None:
    stages.mark(stages.DECODED)  # nothing current: a no-op
    assert stages.current() is None


async def test_marks_land_in_the_current_trace_and_in_the_tasks_it_starts() -> None:
    trace = stages.Trace("e1", time.perf_counter())
    with stages.tracing(trace):
        stages.mark(stages.COMMIT_START)
        first = trace.marks[stages.COMMIT_START]
        await asyncio.gather(asyncio.sleep(0), asyncio.to_thread(time.sleep, 0.001))
        stages.mark(stages.COMMIT_START)  # a start keeps its first moment...
        stages.mark(stages.COMMITTED)
        await asyncio.create_task(_publish())
        committed = trace.marks[stages.COMMITTED]
        stages.mark(stages.COMMITTED)  # ...an end its last
    assert stages.current() is None
    assert trace.marks[stages.COMMIT_START] == first
    assert trace.marks[stages.COMMITTED] > committed
    assert stages.PUBLISH_START in trace.marks  # marked from a task started within


async def _publish() -> None:
    stages.mark(stages.PUBLISH_START)


def test_the_log_writes_a_trace_once_it_settled(tmp_path: Path) -> None:
    log = StageLog(str(tmp_path), settle_seconds=60)
    trace = log.begin("e1")
    trace.mark(stages.STARTED)
    log.finished(trace)
    assert log.flush() == 0  # its ack may still be marked
    trace.mark(stages.ACKED)
    assert log.flush(everything=True) == 1
    (row,) = [json.loads(line) for line in log.path.read_text().splitlines()]
    assert row["id"] == "e1" and set(row) == {"id", stages.RECEIVED, stages.STARTED, stages.ACKED}


def test_the_benchmark_reads_each_stage_as_the_span_between_its_marks(tmp_path: Path) -> None:
    rows = []
    for n in range(100):
        t = 1000.0 + n
        marks = dict(zip(stages.MARKS, (t + 0.001 * (i + 1) for i in range(len(stages.MARKS))), strict=True))
        marks[stages.COMMITTED] = marks[stages.COMMIT_START] + (0.010 if n == 99 else 0.002)
        rows.append({"id": f"lat0-{n}", **marks})
    rows.append({"id": "other-1", stages.RECEIVED: 5.0})  # another measurement's: not read
    (tmp_path / "123.jsonl").write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    sent = {f"lat0-{n}": 1000.0 + n for n in range(100)}
    arrived = {event_id: at + 0.012 for event_id, at in sent.items()}
    found = breakdown(sent, arrived, read_rows(tmp_path, "lat0-"))
    assert found["consume"]["p50"] == 1.0 and found["consume"]["samples"] == 100
    assert found["commit"]["p50"] == 2.0 and found["commit"]["p99"] == 2.0 and found["commit"]["mean"] == 2.08
    assert found["total"]["p50"] == 12.0
    results = {"latency_stages_ms": {"store": "mongodb", "rate_msgs_per_s": 500.0, "basis": "x", "stages": found}}
    assert "wire test server" in stage_title(results)
    assert [row[0] for row in stage_rows(results)][:2] == ["consume", "lane"]
