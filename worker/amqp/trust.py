"""Who may send control events: only the scheduler's broker user, as RabbitMQ validated it.

Gateways and agent runtimes publish to the same inbound exchange as the scheduler, and a control
event's type is in its body, so the exchange cannot tell them apart. The `user-id` message
property can: RabbitMQ refuses a publish whose `user-id` is not the connection's own user (unless
that user has the `impersonator` tag, which no role here gets), so it names the real publisher.
"""

from __future__ import annotations

from dataclasses import dataclass

from aio_pika.abc import AbstractIncomingMessage

from schemas.topology import HEADER_FORWARDED

CONTROL_EVENT_TYPES = frozenset({"session.reset", "session.retention"})


@dataclass(frozen=True, slots=True)
class ControlTrust:
    """`scheduler_user` sends control events; `worker_user` may re-publish them to their slot's
    shard (a forward, which carries the worker's own validated user id)."""

    scheduler_user: str
    worker_user: str

    def refusal(self, message: AbstractIncomingMessage, event_type: str) -> str | None:
        """Why this delivery of a control event is not accepted; None when it is (or is no control event)."""
        if event_type not in CONTROL_EVENT_TYPES:
            return None
        user = message.user_id
        if user == self.scheduler_user:
            return None
        if user == self.worker_user and HEADER_FORWARDED in (message.headers or {}):
            return None
        return (
            f"{event_type} published by broker user {user!r}; control events are accepted only from "
            f"the scheduler's user {self.scheduler_user!r} (SESSIONS_SCHEDULER_USER)"
        )
