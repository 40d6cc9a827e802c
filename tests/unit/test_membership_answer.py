"""A worker answers the first heartbeat of a worker it has not heard before with a beat of its own,
so that a newcomer hears it before claiming shards; later beats, and its own, are not answered."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

from worker.amqp.membership import Membership


class FakeExchange:
    def __init__(self) -> None:
        self.beats: list[dict[str, Any]] = []

    async def publish(self, message: Any, routing_key: str) -> None:
        self.beats.append(json.loads(message.body))


class FakeMessage:
    def __init__(self, worker: str, leaving: bool = False) -> None:
        self.body = json.dumps({"worker": worker, "leaving": leaving}).encode()


async def _changed(_: frozenset[str]) -> None:
    return None


async def test_a_newcomer_is_answered_once() -> None:
    membership = Membership(cast(Any, None), "workers", "w1", 1.0, _changed)
    exchange = FakeExchange()
    membership._exchange = cast(Any, exchange)
    await membership._on_heartbeat(cast(Any, FakeMessage("w1")))  # its own beat, back from the fanout
    await membership._on_heartbeat(cast(Any, FakeMessage("w2")))
    await membership._on_heartbeat(cast(Any, FakeMessage("w2")))
    await asyncio.sleep(0)
    assert exchange.beats == [{"worker": "w1", "leaving": False}]
    assert membership.live() == frozenset({"w1", "w2"})
