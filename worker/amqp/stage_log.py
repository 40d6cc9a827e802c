"""The stage log: finished deliveries' traces (worker/stages.py), written as JSON lines.

Only while the benchmark asks for it (the stage_log_dir setting). Each worker process appends to
a file of its own in that folder, `<pid>.jsonl`, one object a delivery: its event id and its
marks. A trace is written once its ack had time to go out (an ack waits for its batch), from a
task of its own every half second, so the handling of a delivery only appends it to a list.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import deque
from pathlib import Path

from worker.engine.stages import Trace

FLUSH_SECONDS = 0.5


class StageLog:
    def __init__(self, folder: str, settle_seconds: float) -> None:
        self.path = Path(folder) / f"{os.getpid()}.jsonl"
        self._settle = settle_seconds
        self._finished: deque[tuple[float, Trace]] = deque()

    def begin(self, event_id: str | None) -> Trace:
        """A trace for a delivery received now."""
        return Trace(event_id or "", time.perf_counter())

    def finished(self, trace: Trace) -> None:
        self._finished.append((time.perf_counter(), trace))

    def flush(self, *, everything: bool = False) -> int:
        """Write the traces finished long enough ago for their acks to be marked (all of them with
        `everything`); how many were written."""
        before = time.perf_counter() - (0.0 if everything else self._settle)
        rows = []
        while self._finished and self._finished[0][0] <= before:
            _, trace = self._finished.popleft()
            rows.append(json.dumps({"id": trace.event_id, **trace.marks}))
        if rows:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as out:
                out.write("\n".join(rows) + "\n")
        return len(rows)

    async def run(self) -> None:
        """Flush every FLUSH_SECONDS until cancelled, then write what is left."""
        try:
            while True:
                await asyncio.sleep(FLUSH_SECONDS)
                self.flush()
        finally:
            self.flush(everything=True)
