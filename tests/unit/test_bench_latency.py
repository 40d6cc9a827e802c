"""The latency phase's own parts: finding the answered id in a reply, reading the curve, and the
live maximum against a consumer of known capacity."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

import pytest
from pamqp import frame

from benchmarks import cpu
from benchmarks.cases import Arrivals, BenchConfig, answered_id
from benchmarks.latency import encoded, live_maximum, nearest_rank, within_target
from benchmarks.report import latency_rows
from schemas.delivery import DeliveryContext
from schemas.outbound import TurnEvent
from schemas.topology import Topology


def _published_body(frames: bytes) -> bytes:
    """The body of one message's pre-encoded publish frames, read back through pamqp."""
    offset = 0
    parts = []
    while offset < len(frames):
        used, _, part = frame.unmarshal(frames[offset:])
        parts.append(part)
        offset += used
    return parts[-1].value  # type: ignore[union-attr]  # the body frame


def test_a_turn_event_answers_its_in_reply_to_without_a_parse() -> None:
    event_id, _ = encoded(7, 10, "lat3", "bench.inbound")
    turn = TurnEvent(
        event_id="t1",
        in_reply_to=event_id,
        agent_id="main",
        session_id="s1",
        seq=1,
        text='a "quoted" reply',
        delivery=DeliveryContext(channel="bench", to="u7"),
        ordering_key="agent:main:bench:u7",
    )
    body = turn.model_dump_json(by_alias=True, exclude_none=True).encode()
    assert answered_id(body) == "lat3-7"
    assert event_id == "lat3-7"


def test_an_escaped_lookalike_in_an_earlier_field_is_passed_over() -> None:
    body = b'{"text":"he wrote \\"inReplyTo\\":\\"nope\\"","inReplyTo":"lat3-7"}'
    assert answered_id(body) == "lat3-7"


def test_a_copied_body_answers_its_own_event_id() -> None:
    """The bare loop replies with the inbound body itself, which carries no inReplyTo."""
    _, frames = encoded(3, 10, "lat0", "bench.inbound")
    assert answered_id(_published_body(frames)) == "lat0-3"
    assert answered_id(b'{"text":"no ids here"}') == ""


def test_p99_is_the_nearest_rank() -> None:
    assert nearest_rank([float(n) for n in range(1, 201)], 0.99) == 198.0
    assert nearest_rank([float(n) for n in range(1, 101)], 0.99) == 99.0
    assert nearest_rank([5.0], 0.99) == 5.0


def _curve(*points: tuple[float, float, float, float]) -> dict[str, Any]:
    return {
        "latency_curve": [
            {
                "fraction": fraction,
                "rate": rate,
                "worker": {"p50_ms": 1.0, "p99_ms": worker_p99, "samples": 10},
                "bare": {"p50_ms": 1.0, "p99_ms": bare_p99, "samples": 10},
            }
            for fraction, rate, worker_p99, bare_p99 in points
        ]
    }


def test_the_highest_rate_within_the_target_is_read_per_side() -> None:
    results = _curve((0.25, 250.0, 9.0, 5.0), (0.5, 500.0, 80.0, 20.0))
    assert within_target(results) == "highest rate with p99 <= 25 ms: worker 250 msgs/s, bare loop 500 msgs/s"
    assert latency_rows(results)[1] == ("0.5", "500", "1.0", "80.0", "1.0", "20.0", "")


def test_no_rate_within_the_target_is_said_so() -> None:
    results = _curve((0.5, 500.0, 80.0, 30.0))
    assert within_target(results).endswith("worker none of the rates measured, bare loop none of the rates measured")


def test_the_steal_column_reads_both_sides_shares() -> None:
    results = _curve((0.5, 500.0, 80.0, 30.0))
    point = results["latency_curve"][0]
    point["worker"]["cpu_us_per_msg"] = {"total_us": 900.0, "steal_pct": 21.4}
    point["bare"]["cpu_us_per_msg"] = {"total_us": 700.0, "steal_pct": 6.0}
    assert latency_rows(results)[0][-1] == "21 / 6"


class _Consumer:
    """A case whose consumer answers at most `capacity` messages a second, however many arrive:
    the wire queues what is published, a task answers it at that pace through the tap."""

    def __init__(self, capacity: float) -> None:
        self.config = BenchConfig("amqp://unused", slots=10)
        self.names = Topology("benchfake", 1)
        self.arrivals = Arrivals()
        self.wire = self
        self.error: str | None = None  # the tap's connection error: none here
        self.processes = [object()]
        self.pids: list[int] = []
        self._capacity = capacity
        self._waiting: asyncio.Queue[bytes] = asyncio.Queue()
        self._answering = asyncio.get_running_loop().create_task(self._answer())

    def publish(self, frames: bytes) -> None:
        self._waiting.put_nowait(_published_body(frames))

    async def _answer(self) -> None:
        # Paced by the clock, not by ticks: a tick that runs late (a loaded machine) answers what
        # the consumer's capacity allowed since the last one, and never more.
        allowance, last = 0.0, time.perf_counter()
        while True:
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            allowance = min(allowance + self._capacity * (now - last), self._capacity * 0.05)
            last = now
            while allowance >= 1 and not self._waiting.empty():
                self.arrivals.on_body(self._waiting.get_nowait())
                allowance -= 1


async def test_the_live_maximum_is_what_the_consumer_answers_not_what_is_offered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cpu, "broker_pid", lambda _: None)
    consumer = _Consumer(capacity=400)
    try:
        rate = await live_maximum(cast(Any, consumer), first_offer=1000, seconds=1.0)
    finally:
        consumer._answering.cancel()
    # At most its 400 a second (paced by the clock, however late its ticks run); never
    # what was offered (1,000, then 10% over the first estimate: 440).
    assert 340 < rate < 420, rate
    assert consumer._waiting.empty(), "every offered message was answered before it returned"
