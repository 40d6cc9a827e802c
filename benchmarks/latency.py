"""Publish-to-reply latency of the worker and of the bare loop, side by side, at fixed rates.

The rates are fractions of the worker's measured maximum (its drain rate); the target figure is
the one at half. Both sides are measured at every rate, the bare loop first, on consumer
processes that are already running and warm, so that the worker's p99 can be read against what
the reference loop, doing no work at all, reaches on the same machine at the same rate.

The load generator shares the cores with what it measures, so it does as little per message as it
can: each event's frames are encoded before the clock starts and written as they are, and the tap
hands over the replies' bodies undecoded (benchmarks/wire.py), in which it finds the answered id
without parsing them (benchmarks/cases.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import statistics
import time
from dataclasses import dataclass
from typing import Any

from benchmarks import cpu
from benchmarks.cases import Case, inbound
from benchmarks.wire import publish_frames
from worker.amqp.publisher import outbound

TARGET_P99_MS = 25.0
HALF = 0.5  # of the worker's maximum rate: where the target latency is measured
# The live maximum is the reply rate between these shares of the offering time: past the start,
# before the end. It is offered this much more than a first estimate of it, so that it is above
# what the consumer takes without burdening the broker with a backlog much larger than needed.
LIVE_WINDOW = (0.3, 0.9)
LIVE_OVER = 1.1


@dataclass(frozen=True, slots=True)
class Point:
    """One side at one rate: the publish-to-reply percentiles, how many replies they cover, and
    each party's CPU per message meanwhile (None where /proc cannot be read)."""

    rate: float
    p50_ms: float
    p99_ms: float
    samples: int
    cpu: cpu.Use | None

    def as_dict(self) -> dict[str, Any]:
        found = {"p50_ms": round(self.p50_ms, 2), "p99_ms": round(self.p99_ms, 2), "samples": self.samples}
        return found | ({"cpu_us_per_msg": self.cpu} if self.cpu else {})


def encoded(index: int, slots: int, tag: str, exchange: str) -> tuple[str, bytes]:
    """A latency-phase event ready to publish to `exchange`: its id and its frames."""
    event, key = inbound(index, slots, tag)
    message = outbound(event)
    return event.event_id, publish_frames(exchange, key, message.body, message.properties)


def offer(case: Case, rate: float, seconds: float, tag: str) -> list[tuple[str, bytes]]:
    """`seconds` worth of events at `rate` for `case`'s inbound exchange, encoded before the clock starts."""
    exchange = case.names.inbound_exchange
    return [encoded(index, case.config.slots, tag, exchange) for index in range(int(rate * seconds))]


async def measure(case: Case, rate: float, seconds: float, tag: str = "lat") -> Point:
    """Publish to `case` at `rate` per second for `seconds` and time each message to its reply.
    Event ids start with `tag`: a straggler from an earlier measurement cannot pass for a reply."""
    assert case.processes and case.wire, "the latency phase measures running consumers through an open tap"
    messages = offer(case, rate, seconds, tag)
    case.arrivals.track(f"{tag}-")
    try:
        sent, use = await _publish(case, messages, rate)
        with contextlib.suppress(TimeoutError):  # measured on what arrived; the sample count says how many
            await case.arrivals.wait_for_tracked(len(sent), within=60)
        if case.wire.error is not None:  # replies may be missing because the tap went away
            raise ConnectionError(case.wire.error)
        arrived = case.arrivals.by_id
        waits = sorted((arrived[e] - t) * 1000 for e, t in sent.items() if e in arrived)
    finally:
        case.arrivals.track(None)
    if not waits:
        raise RuntimeError(f"none of {len(sent)} messages published at {rate:.0f}/s was answered within 60 s")
    return Point(rate, statistics.median(waits), nearest_rank(waits, 0.99), len(waits), use)


async def _publish(
    case: Case, messages: list[tuple[str, bytes]], rate: float
) -> tuple[dict[str, float], cpu.Use | None]:
    """Publish each message on time through the case's wire; when each was sent, and every party's
    CPU per message meanwhile."""
    wire = case.wire
    assert wire is not None, "measure() checks that the case's tap is open"
    sent: dict[str, float] = {}
    broker = cpu.broker_pid(case.config.url)
    first = cpu.sample(case.pids, broker)
    began = time.perf_counter()
    for index, (event_id, frames) in enumerate(messages):
        delay = began + index / rate - time.perf_counter()
        if delay > 0 or index % 100 == 0:  # behind time (the live maximum), still let the tap read
            await asyncio.sleep(max(delay, 0))
        sent[event_id] = time.perf_counter()
        wire.publish(frames)
    last = cpu.sample(case.pids, broker)
    return sent, cpu.per_message(first, last, len(messages)) if first and last else None


async def live_maximum(case: Case, first_offer: float, seconds: float, tag: str = "live") -> float:
    """The most replies a second `case` sends while a publisher keeps offering more than that.

    A drain's rate overstates what a consumer sustains in service: the broker took the drained
    messages in before the clock started, and in service it takes each one in while the
    consumer works (the broker spends several times a drain's CPU a message then).
    Offered `first_offer` msgs/s (the drain's rate), then 10% more than the rate that gave.
    """
    estimate = await _replies_while_offering(case, first_offer, seconds, f"{tag}a")
    return await _replies_while_offering(case, estimate * LIVE_OVER, seconds, f"{tag}b")


async def _replies_while_offering(case: Case, rate: float, seconds: float, tag: str) -> float:
    """Offer `rate` msgs/s for `seconds`; the reply rate within LIVE_WINDOW of that time. Returns
    once every reply arrived, so the backlog is gone before whatever comes next."""
    assert case.wire, "the live maximum is measured through an open tap"
    messages = offer(case, rate, seconds, tag)
    counts: list[tuple[float, int]] = []

    async def count_at(*shares: float) -> None:
        began = time.perf_counter()
        for share in shares:
            await asyncio.sleep(max(began + share * seconds - time.perf_counter(), 0))
            counts.append((time.perf_counter(), case.arrivals.count))

    counting = asyncio.create_task(count_at(*LIVE_WINDOW))
    case.arrivals.track(f"{tag}-")
    try:
        sent, _ = await _publish(case, messages, rate)
        await counting
        try:
            await case.arrivals.wait_for_tracked(len(sent), within=300)
        except TimeoutError:
            if case.wire.error is not None:  # a tap that went away is the error to report
                raise ConnectionError(case.wire.error) from None
            raise
    finally:
        counting.cancel()
        case.arrivals.track(None)
    (start, replies_before), (end, replies_after) = counts
    return (replies_after - replies_before) / (end - start)


def nearest_rank(ordered: list[float], share: float) -> float:
    """The nearest-rank percentile of an ordered, non-empty list: the smallest value that at least
    `share` of the values do not exceed."""
    return ordered[max(math.ceil(share * len(ordered)) - 1, 0)]


async def curve(
    bare: Case, worker: Case, max_rate: float, fractions: tuple[float, ...], seconds: float, live_max: float
) -> dict[str, Any]:
    """Both sides at each fraction of `max_rate`, lowest first, and at half `live_max`; the figures
    at one half of `max_rate`, which `fractions` must hold, are also given under the target's
    keys (p50_ms, p99_ms...), those at half the live maximum under live_half_*."""
    if HALF not in fractions:
        raise ValueError(f"the latency fractions {fractions} lack {HALF}, where the target figure is measured")
    live = live_max * HALF
    rates = [(max_rate * fraction, fraction, "") for fraction in fractions] + [
        (live, round(live / max_rate, 3), "half the live max")
    ]
    points = []
    for number, (rate, fraction, basis) in enumerate(sorted(rates)):
        reference = await measure(bare, rate, seconds, f"lat{number}")
        measured = await measure(worker, rate, seconds, f"lat{number}")
        points.append((fraction, basis, reference, measured))
    _, _, reference, measured = next(point for point in points if point[0] == HALF and not point[1])
    _, _, live_reference, live_measured = next(point for point in points if point[1])
    return {
        "latency_rate_msgs_per_s": round(measured.rate, 1),
        "p50_ms": measured.p50_ms,
        "p99_ms": measured.p99_ms,
        "latency_samples": measured.samples,
        "bare_loop_p50_ms": reference.p50_ms,
        "bare_loop_p99_ms": reference.p99_ms,
        "live_half_rate_msgs_per_s": round(live_measured.rate, 1),
        "live_half_p50_ms": live_measured.p50_ms,
        "live_half_p99_ms": live_measured.p99_ms,
        "bare_loop_live_half_p50_ms": live_reference.p50_ms,
        "bare_loop_live_half_p99_ms": live_reference.p99_ms,
        **({"latency_cpu_us_per_msg": measured.cpu} if measured.cpu else {}),
        **({"bare_loop_latency_cpu_us_per_msg": reference.cpu} if reference.cpu else {}),
        "latency_curve": [
            {"fraction": f, "basis": basis, "rate": round(w.rate, 1), "worker": w.as_dict(), "bare": b.as_dict()}
            for f, basis, b, w in points
        ],
    }


def within_target(results: dict[str, Any]) -> str:
    """The highest measured rate at which each side's p99 stayed within the target, for the report."""

    def best(side: str) -> str:
        rates = [p["rate"] for p in results.get("latency_curve", []) if p[side]["p99_ms"] <= TARGET_P99_MS]
        return f"{max(rates):,.0f} msgs/s" if rates else "none of the rates measured"

    return f"highest rate with p99 <= {TARGET_P99_MS:.0f} ms: worker {best('worker')}, bare loop {best('bare')}"
