"""What redaction costs: the worker case drained with redaction on (the default) and off
(`SESSIONS_REDACTION=false`), side by side in alternating rounds, and the redaction step alone on
the case's message in this process.

The throughput figure is the median of the rounds' on / off rates: the factor by which redaction
moves the worker's throughput, and so its ratio to the bare loop (the issue allows 2%). The cost
per message is the redaction of one of the case's inbound texts (what the worker does before
storing it), timed here without a broker, also as a share of the worker's event-loop CPU per
message, and the difference of the drains' worker CPU per message.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks.cases import TEXT, BenchConfig, Drain
from worker.engine.redaction import BUILT_IN, Findings, Redactor

# Drains one worker case of a config: (config, case name) -> its rate and CPU.
Rate = Callable[[BenchConfig, str], Awaitable[Drain]]
OFF = {"SESSIONS_REDACTION": "false"}


def redactor_us(text: str = TEXT, calls: int = 2_000, batches: int = 5) -> float:
    """Median µs of one redaction of `text` by the built-in detectors (nothing in it to replace)."""
    redactor = Redactor(BUILT_IN)
    times = []
    for _ in range(batches):
        start = time.perf_counter()
        for _ in range(calls):
            redactor.text(text, Findings())
        times.append((time.perf_counter() - start) / calls * 1e6)
    return round(statistics.median(times), 2)


def _cpu(drained: Drain) -> float | None:
    use = drained.cpu
    return None if use is None else use.get("loop_thread_us", 0) + use.get("other_threads_us", 0)


async def on_and_off(config: BenchConfig, rate: Rate) -> dict[str, Any]:
    """`config.rounds` rounds of a redacting and a plain worker case, which goes first alternating."""
    plain = dataclasses.replace(config, worker_env={**config.worker_env, **OFF})
    rounds: list[dict[str, Any]] = []
    for number in range(1, config.rounds + 1):
        drained: dict[str, Drain] = {}
        sides = (("on", config), ("off", plain))
        for side, sized in sides if number % 2 else sides[::-1]:
            drained[side] = await rate(sized, f"worker-redaction-{side}-{number}")
        on, off = drained["on"], drained["off"]
        on_cpu, off_cpu = _cpu(on), _cpu(off)
        rounds.append(
            {
                "on": round(on.rate, 1),
                "off": round(off.rate, 1),
                "on_off": round(on.rate / off.rate, 3),
                "worker_cpu_us_diff": None if on_cpu is None or off_cpu is None else round(on_cpu - off_cpu, 1),
                "on_loop_us": None if on.cpu is None else on.cpu.get("loop_thread_us"),
            }
        )
    diffs = [r["worker_cpu_us_diff"] for r in rounds if r["worker_cpu_us_diff"] is not None]
    alone = redactor_us()
    loops = [r["on_loop_us"] for r in rounds if r["on_loop_us"]]
    # The worker's event-loop thread is what a drain waits on: redaction's share of its CPU is the
    # share of throughput it can take, a figure the machine's noise does not move.
    share = {"redaction_share_of_worker_loop_pct": round(alone / statistics.median(loops) * 100, 2)} if loops else {}
    return {
        "redaction_rounds": rounds,
        "redaction_on_msgs_per_s": statistics.median(r["on"] for r in rounds),
        "redaction_off_msgs_per_s": statistics.median(r["off"] for r in rounds),
        "redaction_throughput_on_off": statistics.median(r["on_off"] for r in rounds),
        **({"redaction_worker_cpu_us_per_msg": statistics.median(diffs)} if diffs else {}),
        "redaction_us_per_msg": alone,
        **share,
    }
