"""Poison detection that survives crashes: attempts at redelivered events, counted in the store.

Only a redelivered event can have crashed a worker, so only those are counted, one durable write
each before it is applied; a first delivery costs nothing. Redelivered events are applied one at
a time (first deliveries still run alongside), so a crash is charged to the one redelivered event
in progress and not to its neighbours in other lanes. An event whose deliveries have all ended
without an ack `limit` times (the first delivery plus the counted ones) is dead-lettered `poison`
instead of crashing the worker again; the broker's delivery limit is only a last resort.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aio_pika.abc import AbstractIncomingMessage

from worker.clock import Clock
from worker.stores.base import SessionStore

log = logging.getLogger(__name__)


def attempt_key(message: AbstractIncomingMessage, event_id: str) -> str:
    """The routing key scopes the event id: two chats may carry the same id."""
    return f"{message.routing_key or ''}|{event_id}"


class PoisonGuard:
    def __init__(self, store: SessionStore, clock: Clock, limit: int) -> None:
        self._store = store
        self._clock = clock
        self.limit = limit
        self._solo = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def turn(self, message: AbstractIncomingMessage) -> AsyncIterator[None]:
        """Hold a redelivered event's turn: one redelivered event applies at a time."""
        if not message.redelivered:
            yield
            return
        async with self._solo:
            yield

    async def record(self, key: str) -> int:
        """Count this attempt durably (before the event is applied); the total so far."""
        return await self._store.record_attempt(key, self._clock())

    def exhausted(self, count: int) -> bool:
        # `count` redeliveries were counted, this one included: the first delivery and count - 1
        # redeliveries ended without an ack, each most likely with a dead worker.
        return count >= self.limit

    async def settled(self, key: str) -> None:
        """Forget a settled event's attempts; a failure only leaves a row that nothing reads."""
        try:
            await self._store.forget_attempts(key)
        except Exception as exc:  # best effort: the event is settled either way
            log.debug("could not forget the attempts of %s: %s", key, exc)
