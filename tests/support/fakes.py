"""Small stand-ins for the broker side of EventHandler: a delivery that records its ack, and a
publisher that records what would have been published (both real in behaviour, not mocks of
the code under test)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from worker.outcome import Outcome


@dataclass
class Delivery:
    body: bytes
    routing_key: str = ""
    redelivered: bool = False
    message_id: str | None = None
    type: str | None = None
    headers: dict[str, Any] = field(default_factory=dict)
    acks: int = 0

    async def ack(self) -> None:
        self.acks += 1


@dataclass
class RecordingPublisher:
    outcomes: list[Outcome] = field(default_factory=list)
    dead: list[tuple[str, str]] = field(default_factory=list)
    forwarded: list[str] = field(default_factory=list)
    fail_next: int = 0

    async def publish_outcome(self, outcome: Outcome) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionError("injected publish failure")
        self.outcomes.append(outcome)

    async def forward(self, message: Any, routing_key: str, hops: int) -> None:
        self.forwarded.append(routing_key)

    async def dead_letter(self, message: Any, reason: str, detail: str) -> None:
        self.dead.append((reason, detail))


def delivery_of(event: dict[str, Any], routing_key: str = "") -> Delivery:
    return Delivery(json.dumps(event).encode(), routing_key=routing_key, message_id=str(event.get("eventId", "")))
