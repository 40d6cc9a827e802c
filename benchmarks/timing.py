"""Timing helpers shared by the engine-level benchmarks."""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable

Action = Callable[[], Awaitable[object]]


async def timed(action: Action, samples: int) -> float:
    """Median microseconds per call."""
    durations = []
    for _ in range(samples):
        start = time.perf_counter()
        await action()
        durations.append(time.perf_counter() - start)
    return statistics.median(durations) * 1e6


async def interleaved(small: Action, large: Action, *, samples: int, rounds: int = 5) -> tuple[float, float]:
    """Median cost of each side, alternating rounds so that machine noise hits both alike."""
    smalls, larges = [], []
    for _ in range(rounds):
        smalls.append(await timed(small, samples // rounds))
        larges.append(await timed(large, samples // rounds))
    return statistics.median(smalls), statistics.median(larges)
