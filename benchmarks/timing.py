"""Timing and command-line helpers shared by the engine-level benchmarks."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

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


Results = dict[str, float]


def command_line(
    doc: str | None,
    run: Callable[[Path, argparse.Namespace], Coroutine[Any, Any, Results]],
    options: Callable[[argparse.ArgumentParser], object] | None = None,
) -> Results:
    """The shared `python -m benchmarks.X [--json]` entry: parse, run in a scratch folder, print."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    if options is not None:
        options(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = asyncio.run(run(Path(tmp), args))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for name, value in results.items():
            print(f"{name:40s} {value:14.2f}")
    return results
