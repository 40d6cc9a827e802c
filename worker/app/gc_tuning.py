"""Garbage-collector tuning for the long-running worker process (SESSIONS_ADVANCED__GC_YOUNG_THRESHOLD).

Every message allocates many short-lived objects that reference counting frees at once, yet
CPython's young-generation threshold (700) runs a cyclic collection every few messages; a higher
threshold, with what start-up built frozen, spends less of the event loop on collecting
(measurements: docs/benchmarks/history.md).
"""

from __future__ import annotations

import gc


def tune_collector(young_threshold: int) -> None:
    """Freeze what exists now and collect the young generation every `young_threshold` allocations
    (0 leaves CPython's defaults)."""
    if young_threshold <= 0:
        return
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young_threshold, middle, old)
