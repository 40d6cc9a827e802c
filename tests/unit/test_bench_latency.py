"""The latency phase's pure parts: finding the answered id in a reply, and reading the curve."""

from __future__ import annotations

from typing import Any

from aiormq.abc import DeliveredMessage
from pamqp import commands, header

from benchmarks.cases import answered_id
from benchmarks.latency import encoded, nearest_rank, within_target
from benchmarks.report import latency_rows
from schemas.delivery import DeliveryContext
from schemas.outbound import TurnEvent


def _delivered(body: bytes, message_id: str | None = None) -> DeliveredMessage:
    properties = commands.Basic.Properties(message_id=message_id)
    return DeliveredMessage(
        delivery=commands.Basic.Deliver(routing_key="main"),
        header=header.ContentHeader(body_size=len(body), properties=properties),
        body=body,
        channel=None,  # type: ignore[arg-type]  # not read
    )


def test_a_turn_event_answers_its_in_reply_to_without_a_parse() -> None:
    event_id, _, message = encoded(7, 10, "lat3")
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
    assert answered_id(_delivered(body, message_id="t1")) == "lat3-7"
    assert message.properties.message_id == "lat3-7"


def test_an_escaped_lookalike_in_an_earlier_field_is_passed_over() -> None:
    body = b'{"text":"he wrote \\"inReplyTo\\":\\"nope\\"","inReplyTo":"lat3-7"}'
    assert answered_id(_delivered(body, message_id="t1")) == "lat3-7"


def test_a_copied_body_answers_its_own_message_id() -> None:
    """The bare loop replies with the inbound body itself, which carries no inReplyTo."""
    _, _, message = encoded(3, 10, "lat0")
    assert answered_id(_delivered(message.body, message_id="lat0-3")) == "lat0-3"


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
    assert latency_rows(results)[1] == ("0.5", "500", "1.0", "80.0", "1.0", "20.0")


def test_no_rate_within_the_target_is_said_so() -> None:
    results = _curve((0.5, 500.0, 80.0, 30.0))
    assert within_target(results).endswith("worker none of the rates measured, bare loop none of the rates measured")
