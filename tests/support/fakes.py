"""Small stand-ins for the broker side of EventHandler: a delivery that records its ack, and a
publisher that records what would have been published (both real in behaviour, not mocks of
the code under test)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any, cast

from worker.amqp.consumer import EventHandler
from worker.amqp.poison import PoisonGuard
from worker.amqp.trust import ControlTrust
from worker.engine.clock import Clock, system_clock
from worker.engine.outcome import Outcome
from worker.service.metrics import WorkerMetrics
from worker.service.outcome_log import OutcomeLog
from worker.service.processor import EventProcessor
from worker.sessions.manager import SessionManager
from worker.stores.health import StoreHealth

SCHEDULER_USER = "scheduler"  # the broker user whose control events handler_for's handler accepts


@dataclass
class Delivery:
    body: bytes
    routing_key: str = ""
    redelivered: bool = False
    message_id: str | None = None
    type: str | None = None
    headers: dict[str, Any] = field(default_factory=dict)
    user_id: str | None = None
    delivery_tag: int = 1
    acks: int = 0

    @property
    def channel(self) -> Delivery:
        """The delivery stands in for its own channel: the worker acks through the channel."""
        return self

    async def basic_ack(self, delivery_tag: int, multiple: bool = False, wait: bool = True) -> None:
        assert delivery_tag == self.delivery_tag and not multiple
        self.acks += 1


@dataclass
class RecordingPublisher:
    outcomes: list[Outcome] = field(default_factory=list)
    dead: list[tuple[str, str]] = field(default_factory=list)
    dead_bodies: list[bytes] = field(default_factory=list)  # as published: secrets redacted
    forwarded: list[str] = field(default_factory=list)
    fail_next: int = 0

    async def publish_outcome(self, outcome: Outcome) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionError("injected publish failure")
        self.outcomes.append(outcome)

    async def forward(self, message: Any, routing_key: str, hops: int) -> None:
        self.forwarded.append(routing_key)

    async def dead_letter(
        self, message: Any, reason: str, detail: str, *, body: bytes | None = None, redacted: tuple[str, ...] = ()
    ) -> None:
        self.dead.append((reason, detail))
        self.dead_bodies.append(message.body if body is None else body)


def handler_for(
    manager: SessionManager,
    publisher: RecordingPublisher,
    *,
    max_payload_bytes: int = 65536,
    clock: Clock = system_clock,
    health: StoreHealth | None = None,
    poison_attempts: int = 5,
) -> EventHandler:
    """The worker's EventHandler over `manager`, publishing into `publisher` (its metrics, the
    redaction counter among them, are the handler's `metrics`)."""
    metrics = WorkerMetrics()
    return EventHandler(
        EventProcessor(manager, clock, on_redacted=metrics.redacted),
        OutcomeLog(manager.store, manager.transcript.codec, clock),
        cast(Any, publisher),
        clock,
        asyncio.Event(),
        metrics,
        max_payload_bytes=max_payload_bytes,
        trust=ControlTrust(scheduler_user=SCHEDULER_USER, worker_user="worker"),
        health=health if health is not None else StoreHealth(),
        poison=PoisonGuard(manager.store, clock, poison_attempts),
    )


def delivery_of(event: dict[str, Any], routing_key: str = "") -> Delivery:
    return Delivery(json.dumps(event).encode(), routing_key=routing_key, message_id=str(event.get("eventId", "")))


async def deliver(handler: EventHandler, delivery: Delivery) -> None:
    """Hand `delivery` to the worker's handler, as the consumer would."""
    await handler.handle(cast(Any, delivery))
