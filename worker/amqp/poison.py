"""Poison detection that survives crashes: attempts at redelivered events, counted in the store.

Only a redelivered event can have crashed a worker, so only those are counted, one durable write
each before it is applied; a first delivery costs nothing. A first redelivery (the broker's
x-delivery-count is 1: after a crash, a rebalance or a deploy, the usual case) runs alongside
the others; an event redelivered again runs alone among the redelivered ones (first deliveries
still run alongside), so a crash loop charges its crashes to the event in progress, not to its
neighbours in other lanes, which wait their turn without being counted. An event whose
deliveries have ended without an ack `limit` times (the first delivery plus the counted ones) is
dead-lettered `poison` instead of crashing the worker again; the broker's delivery limit is only
a last resort.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aio_pika.abc import AbstractIncomingMessage

from worker.engine.clock import Clock
from worker.stores.base import AttemptRecords

log = logging.getLogger(__name__)


def attempt_key(message: AbstractIncomingMessage, event_id: str) -> str:
    """The routing key scopes the event id: two chats may carry the same id."""
    return f"{message.routing_key or ''}|{event_id}"


class PoisonGuard:
    def __init__(self, store: AttemptRecords, clock: Clock, limit: int) -> None:
        self._store = store
        self._clock = clock
        self.limit = limit
        self._gate = _Gate()

    @contextlib.asynccontextmanager
    async def turn(self, message: AbstractIncomingMessage) -> AsyncIterator[None]:
        """Hold a redelivered event's turn: shared for a first redelivery, alone for later ones."""
        if not message.redelivered:
            yield
            return
        count = (message.headers or {}).get("x-delivery-count")
        solo = not isinstance(count, int) or count >= 2  # without the header: the safe way
        async with self._gate.turn(solo=solo):
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


class _Gate:
    """Shared turns run together; a solo turn waits for the shared ones to finish and runs alone,
    and shared turns wait while a solo one runs or waits."""

    def __init__(self) -> None:
        self._changed = asyncio.Condition()
        self._shared = 0
        self._solo = False
        self._solo_waiting = 0

    @contextlib.asynccontextmanager
    async def turn(self, *, solo: bool) -> AsyncIterator[None]:
        async with self._changed:
            if solo:
                self._solo_waiting += 1
                try:
                    await self._changed.wait_for(lambda: not self._solo and self._shared == 0)
                except BaseException:  # cancelled while waiting: the shared ones may go now
                    self._solo_waiting -= 1
                    self._changed.notify_all()
                    raise
                self._solo_waiting -= 1
                self._solo = True
            else:
                await self._changed.wait_for(lambda: not self._solo and self._solo_waiting == 0)
                self._shared += 1
        try:
            yield
        finally:
            async with self._changed:
                if solo:
                    self._solo = False
                else:
                    self._shared -= 1
                self._changed.notify_all()
