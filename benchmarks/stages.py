"""Where the worker's publish-to-reply time goes: its stage log, read against the benchmark's clock.

A latency case's workers keep a stage log (worker/stages.py, worker/amqp/stage_log.py): for each
delivery, the monotonic moment it passed each mark. The benchmark knows when it published each
event and when the reply reached its tap, on the same clock (perf_counter is CLOCK_MONOTONIC,
shared by the processes of one Linux machine), so every stage of a message is one difference:

  consume   published -> received by the worker's consumer (broker in, socket, aio-pika)
  lane      -> its lane began handling it (waiting behind its key's earlier messages)
  decode    -> decoded and checked
  lookup    -> the outcome record consulted (a replay, a conflict?)
  resolve   -> its write handed to the store (slot, session, redaction, sealing)
  commit    -> the write committed (the group commit: window, hand-offs, the writers' lock)
  outcome   -> the turn event handed to the channel (building it, recording an outcome)
  reply     -> the reply reached the benchmark's tap (publish, broker, tap)
  confirm   handed to the channel -> the broker's confirm (off the reply's path)
  ack       confirmed -> the ack frame queued (its batch; off the reply's path)
  total     published -> reply at the tap
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from worker.engine import stages

Row = dict[str, Any]
# Stage name -> (the mark or benchmark moment it starts at, the one it ends at).
STAGES: dict[str, tuple[str, str]] = {
    "consume": ("sent", stages.RECEIVED),
    "lane": (stages.RECEIVED, stages.STARTED),
    "decode": (stages.STARTED, stages.DECODED),
    "lookup": (stages.DECODED, stages.LOOKED_UP),
    "resolve": (stages.LOOKED_UP, stages.COMMIT_START),
    "commit": (stages.COMMIT_START, stages.COMMITTED),
    "outcome": (stages.COMMITTED, stages.PUBLISH_START),
    "reply": (stages.PUBLISH_START, "arrived"),
    "confirm": (stages.PUBLISH_START, stages.CONFIRMED),
    "ack": (stages.CONFIRMED, stages.ACKED),
    "total": ("sent", "arrived"),
}


def read_rows(folder: Path, prefix: str) -> dict[str, Row]:
    """Every worker process's logged deliveries whose event id starts with `prefix`, by id (a
    redelivered event keeps its last delivery's)."""
    rows: dict[str, Row] = {}
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith('{"id": "' + prefix):
                row = json.loads(line)
                rows[row["id"]] = row
    return rows


def breakdown(sent: dict[str, float], arrived: dict[str, float], rows: dict[str, Row]) -> dict[str, dict[str, float]]:
    """Each stage's p50, p99 and mean (ms) over the messages answered and logged, with their count."""
    moments = [
        {**row, "sent": sent[event_id], "arrived": arrived[event_id]}
        for event_id, row in rows.items()
        if event_id in sent and event_id in arrived
    ]
    found: dict[str, dict[str, float]] = {}
    for stage, (start, end) in STAGES.items():
        spans = sorted((m[end] - m[start]) * 1000 for m in moments if start in m and end in m)
        if spans:
            found[stage] = summary(spans)
    return found


def summary(ordered: list[float]) -> dict[str, float]:
    return {
        "p50": round(statistics.median(ordered), 3),
        "p99": round(nearest_rank(ordered, 0.99), 3),
        "mean": round(statistics.fmean(ordered), 3),
        "samples": len(ordered),
    }


def nearest_rank(ordered: list[float], share: float) -> float:
    """The nearest-rank percentile of an ordered, non-empty list: the smallest value that at least
    `share` of the values do not exceed."""
    return ordered[max(math.ceil(share * len(ordered)) - 1, 0)]


def table(stages_ms: dict[str, dict[str, float]], names: Iterable[str] = STAGES) -> list[tuple[str, str, str, str]]:
    """(stage, p50, p99, mean) rows for a report, in path order."""
    return [
        (name, f"{each['p50']:.2f}", f"{each['p99']:.2f}", f"{each['mean']:.2f}")
        for name in names
        if (each := stages_ms.get(name)) is not None
    ]
