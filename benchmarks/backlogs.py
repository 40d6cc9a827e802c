"""Throughput at every backlog depth the bench offers, side by side: bare / worker pairs drained
from queues pre-loaded with 2,000, 8,000 and 20,000 messages a case, and the live maxima
(publisher running, benchmarks/latency.py).

A drain's fixed costs (the consumers' first deliveries, the first touch of each of the case's
1,000 slots) weigh more on a short one, so the ratio is reported at each depth, each from
`rounds` alternating pairs like the main throughput rounds (whose depth is not run twice).
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks import cpu
from benchmarks.cases import BenchConfig, Drain

# Runs one bare / worker pair of a config's size: (config, round number, case label) -> (bare, worker).
Pair = Callable[[BenchConfig, int, str], Awaitable[tuple[Drain, Drain]]]


def one_round(bare: Drain, worker: Drain) -> dict[str, Any]:
    return {
        "bare": round(bare.rate, 1),
        "worker": round(worker.rate, 1),
        "ratio": round(worker.rate / bare.rate, 3),
        "bare_cpu": bare.cpu,
        "worker_cpu": worker.cpu,
    }


def medians(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The rates' medians and the median of the rounds' own ratios, with every round's ratio."""
    return {
        "bare_msgs_per_s": statistics.median(r["bare"] for r in rounds),
        "worker_msgs_per_s": statistics.median(r["worker"] for r in rounds),
        "ratio": statistics.median(r["ratio"] for r in rounds),
        "round_ratios": [r["ratio"] for r in rounds],
        **cpu.summary([(r["bare_cpu"], r["worker_cpu"]) for r in rounds]),
    }


async def depths(config: BenchConfig, pair: Pair, main: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each depth of config.backlogs, keyed by its message count; `main` are the main rounds, at
    config.messages."""
    found: dict[str, dict[str, Any]] = {}
    for depth in sorted({*config.backlogs, config.messages}):
        if depth == config.messages:
            rounds = main
        else:
            sized = dataclasses.replace(config, messages=depth)
            numbers = range(1, config.rounds + 1)
            rounds = [one_round(*await pair(sized, number, f"{depth}-{number}")) for number in numbers]
        found[str(depth)] = {"messages": depth, **medians(rounds)}
    return found


def with_live(by_depth: dict[str, dict[str, Any]], results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The depths and, when the latency phase ran, the live maxima beside them."""
    if "live_ratio_vs_bare_loop" not in results:
        return by_depth
    live = {
        "bare_msgs_per_s": results["bare_loop_live_max_msgs_per_s"],
        "worker_msgs_per_s": results["live_max_msgs_per_s"],
        "ratio": results["live_ratio_vs_bare_loop"],
    }
    return {**by_depth, "live": live}


def lowest_ratio(table: dict[str, dict[str, Any]]) -> float:
    return min(float(row["ratio"]) for row in table.values())


COLUMNS = ("backlog (messages a case)", "bare loop (msgs/s)", "worker (msgs/s)", "worker / bare loop", "rounds")
TITLE = "Throughput at each backlog depth, side by side (medians of rounds; live: the publisher running)"


def table_rows(results: dict[str, Any]) -> list[tuple[str, ...]]:
    """A row per depth, then the live maxima's."""
    return [
        (
            f"{row['messages']:,}" if "messages" in row else name,
            f"{row['bare_msgs_per_s']:,.0f}",
            f"{row['worker_msgs_per_s']:,.0f}",
            f"{row['ratio']:.3f}",
            " / ".join(f"{ratio:.2f}" for ratio in row.get("round_ratios", [])),
        )
        for name, row in results.get("throughput", {}).items()
    ]
