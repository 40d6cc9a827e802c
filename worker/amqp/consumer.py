"""One delivered message -> its effect, its confirmed outcome, then the ack. Never before."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aio_pika.abc import AbstractIncomingMessage
from aio_pika.exceptions import AMQPError
from pydantic import ValidationError

from schemas.events import EVENT_TYPES, INBOUND_EVENT, InboundEvent
from schemas.topology import HEADER_FORWARDED
from worker.amqp.publisher import Publisher
from worker.clock import Clock
from worker.errors import StoreUnavailable
from worker.outcome import Outcome
from worker.processor import EventProcessor, Rejected
from worker.stores.base import SessionStore

log = logging.getLogger(__name__)
MAX_FORWARD_HOPS = 3
MAX_BUG_ATTEMPTS = 5
_TRANSIENT = (StoreUnavailable, AMQPError, ConnectionError, asyncio.TimeoutError)


@dataclass
class HandlerStats:
    applied: int = 0
    replayed: int = 0
    forwarded: int = 0
    dead_lettered: int = 0
    redelivered: int = 0
    by_type: dict[str, int] = field(default_factory=dict)


class BadInput(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def decode(message: AbstractIncomingMessage, max_bytes: int) -> InboundEvent:
    if len(message.body) > max_bytes:
        raise BadInput("oversize", f"payload of {len(message.body)} bytes is over the {max_bytes}-byte limit")
    try:
        raw = json.loads(message.body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput("invalid-json", f"body is not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise BadInput("schema", "an event must be a JSON object")
    if raw.get("type") not in EVENT_TYPES:
        raise BadInput(
            "unknown-type", f"unknown event type {str(raw.get('type'))[:80]!r}; known: {', '.join(EVENT_TYPES)}"
        )
    try:
        return INBOUND_EVENT.validate_python(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:10])
        raise BadInput("schema", problems) from exc


def forward_hops(message: AbstractIncomingMessage) -> int:
    value = (message.headers or {}).get(HEADER_FORWARDED)
    return value if isinstance(value, int) else 0


def channel_closed(message: AbstractIncomingMessage) -> bool:
    channel = getattr(message, "channel", None)
    return bool(getattr(channel, "is_closed", False))


class EventHandler:
    def __init__(
        self,
        processor: EventProcessor,
        store: SessionStore,
        publisher: Publisher,
        clock: Clock,
        stopping: asyncio.Event,
        *,
        max_payload_bytes: int,
    ) -> None:
        self._processor = processor
        self._store = store
        self._publisher = publisher
        self._clock = clock
        self._stopping = stopping
        self._max_payload_bytes = max_payload_bytes
        self.stats = HandlerStats()

    async def handle(self, message: AbstractIncomingMessage) -> None:
        if message.redelivered:
            self.stats.redelivered += 1
        try:
            event = decode(message, self._max_payload_bytes)
        except BadInput as bad:
            reason, detail = bad.reason, bad.detail
            await self._retrying(message, lambda: self._dead_letter(message, reason, detail))
            return
        await self._retrying(message, lambda: self._apply(message, event))

    async def _apply(self, message: AbstractIncomingMessage, event: InboundEvent) -> None:
        recorded = await self._store.get_outcome(event.event_id)
        if recorded is not None:
            # Applied before (a redelivery or a duplicate publish): same replies, same ids.
            await self._publisher.publish_outcome(Outcome.model_validate_json(recorded))
            self.stats.replayed += 1
            await message.ack()
            return
        slot = await self._processor.slot_key(event)
        hops = forward_hops(message)
        if slot and slot != message.routing_key and hops < MAX_FORWARD_HOPS:
            await self._publisher.forward(message, slot, hops + 1)
            self.stats.forwarded += 1
            await message.ack()
            return
        try:
            outcome = await self._processor.apply(event)
        except Rejected as rejected:
            await self._dead_letter(message, rejected.reason, rejected.detail)
            return
        await self._store.save_outcome(event.event_id, outcome.model_dump_json(), self._clock())
        await self._publisher.publish_outcome(outcome)
        await message.ack()
        self.stats.applied += 1
        self.stats.by_type[event.type] = self.stats.by_type.get(event.type, 0) + 1

    async def _dead_letter(self, message: AbstractIncomingMessage, reason: str, detail: str) -> None:
        log.warning("dead-lettering message %s: %s: %s", message.message_id, reason, detail[:200])
        await self._publisher.dead_letter(message, reason, detail)
        await message.ack()
        self.stats.dead_lettered += 1

    async def _retrying(self, message: AbstractIncomingMessage, step: Callable[[], Awaitable[None]]) -> None:
        """Run `step` until it succeeds. Transient faults retry with back-off for as long as the
        worker runs (the lane waits, keeping order); a bug is dead-lettered after a few tries."""
        delay, bugs = 0.05, 0
        while True:
            try:
                await step()
                return
            except _TRANSIENT as exc:
                if channel_closed(message):
                    # The delivery died with its channel; the broker hands the message out again.
                    log.info("channel closed under %s; leaving it to redelivery", message.message_id)
                    return
                log.warning("transient failure on %s, retrying in %.2fs: %s", message.message_id, delay, exc)
            except Exception as exc:
                bugs += 1
                log.exception("failed to apply %s (attempt %d)", message.message_id, bugs)
                if bugs >= MAX_BUG_ATTEMPTS:
                    await self._retrying(message, functools.partial(self._dead_letter, message, "error", repr(exc)))
                    return
            if self._stopping.is_set():
                return  # left unacked: the broker redelivers it to whoever owns the shard next
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
