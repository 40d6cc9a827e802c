"""One delivered message -> its effect, its confirmed outcome, then the ack. Never before."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable

from aio_pika.abc import AbstractIncomingMessage
from aio_pika.exceptions import AMQPError, ChannelInvalidStateError

from schemas.events import InboundEvent, InboundMessage
from schemas.topology import HEADER_FORWARDED
from worker.amqp.acks import ack_now
from worker.amqp.poison import PoisonGuard, attempt_key
from worker.amqp.publisher import Publisher
from worker.amqp.trust import ControlTrust
from worker.engine import stages
from worker.engine.clock import Clock
from worker.engine.idempotency import Identity, identify
from worker.errors import EventIdConflict, StoreUnavailable
from worker.service.inbound import BadInput, decode_body
from worker.service.metrics import HandlerStats, WorkerMetrics
from worker.service.outcome_log import OutcomeLog, legacy_filter
from worker.service.processor import EventProcessor, Rejected, recorded_first
from worker.stores.health import StoreHealth

log = logging.getLogger(__name__)
MAX_FORWARD_HOPS = 3
MAX_BUG_ATTEMPTS = 5
# aio-pika raises ChannelInvalidStateError (a RuntimeError, not an AMQPError) for a publish or an
# ack on a channel that a lost connection closed: transient, never a bug to dead-letter.
_TRANSIENT = (AMQPError, ChannelInvalidStateError, ConnectionError, asyncio.TimeoutError)
Settle = Callable[[AbstractIncomingMessage], Awaitable[None]]  # acks a delivery: at once, or batched


__all__ = ["BadInput", "EventHandler", "decode"]


def decode(message: AbstractIncomingMessage, max_bytes: int) -> InboundEvent:
    return decode_body(message.body, max_bytes)


def _ids(message: AbstractIncomingMessage) -> dict[str, str | None]:
    """Structured log fields of a delivery: its ids, never its content."""
    return {"event_id": message.message_id, "event_type": message.type}


def forward_hops(message: AbstractIncomingMessage) -> int:
    value = (message.headers or {}).get(HEADER_FORWARDED)
    return value if isinstance(value, int) else 0


def channel_closed(message: AbstractIncomingMessage) -> bool:
    try:
        channel = getattr(message, "channel", None)
    except ChannelInvalidStateError:  # what IncomingMessage.channel raises once it is closed
        return True
    return bool(getattr(channel, "is_closed", False))


class EventHandler:
    def __init__(
        self,
        processor: EventProcessor,
        outcomes: OutcomeLog,
        publisher: Publisher,
        clock: Clock,
        stopping: asyncio.Event,
        metrics: WorkerMetrics,
        *,
        max_payload_bytes: int,
        trust: ControlTrust,
        health: StoreHealth,
        poison: PoisonGuard,
    ) -> None:
        self._health = health
        self._poison = poison
        self._processor = processor
        self._trust = trust
        self._outcomes = outcomes
        self._publisher = publisher
        self._clock = clock
        self._stopping = stopping
        self._max_payload_bytes = max_payload_bytes
        self.metrics = metrics

    @property
    def stats(self) -> HandlerStats:
        return self.metrics.snapshot()

    async def handle(self, message: AbstractIncomingMessage, settle: Settle = ack_now) -> None:
        """Apply one delivery, publish its outcome, then `settle` (ack) it; never the ack first."""
        if message.redelivered:
            self.metrics.redeliveries.inc()
        try:
            event = decode(message, self._max_payload_bytes)
        except BadInput as bad:
            await self._retrying(message, settle, functools.partial(self._refuse, message, settle, bad))
            return
        stages.mark(stages.DECODED)
        refusal = self._trust.refusal(message, event.type)
        if refusal is not None:  # a forged control event: never applied, decided on first delivery
            unauthorized = functools.partial(self._dead_letter, message, settle, "unauthorized", refusal, event.type)
            await self._retrying(message, settle, unauthorized)
            return
        started = time.perf_counter()
        attempts = 0
        key = attempt_key(message, event.event_id)
        counted: int | None = None  # this delivery's attempt, counted once (redeliveries only)
        settled = False

        async def attempt() -> None:
            nonlocal attempts, counted, settled
            attempts += 1
            if message.redelivered and counted is None:
                counted = await self._poison.record(key)
            if counted is not None and self._poison.exhausted(counted):
                detail = f"its deliveries ended without an ack {counted} times (workers crashed applying it)"
                await self._dead_letter(message, settle, "poison", detail, event.type)
            else:
                # A retry may follow a recorded outcome whose publish failed: re-publish that one.
                await self._apply(message, event, settle, check_recorded=message.redelivered or attempts > 1)
            settled = True

        async with self._poison.turn(message):
            await self._retrying(message, settle, attempt)
        if counted is not None and settled:
            await self._poison.settled(key)
        self.metrics.apply_seconds.observe(time.perf_counter() - started)

    async def _apply(
        self, message: AbstractIncomingMessage, event: InboundEvent, settle: Settle, *, check_recorded: bool
    ) -> None:
        identity = identify(event)
        # Commands and the like are recognised only by their record: look it up first. A chat or
        # agent message finds its stored entry while applying, and consults the record only then
        # (or on a redelivery), which keeps this read off the hot path.
        looks_first = recorded_first(event)
        # A chat message looks too (one read): a command may hold its key, which only the record tells.
        chat_message = isinstance(event, InboundMessage)
        if looks_first or check_recorded or chat_message:
            legacy = looks_first or check_recorded
            if await self._replayed(message, event, identity, settle, legacy=legacy):
                return
        if looks_first and await self._entry_of_another(message, event, identity, settle):
            return
        stages.mark(stages.LOOKED_UP)
        slot = await self._processor.slot_key(event)
        hops = forward_hops(message)
        if slot and slot != message.routing_key and hops < MAX_FORWARD_HOPS:
            await self._publisher.forward(message, slot, hops + 1)
            await settle(message)
            self.metrics.event(event.type, "forwarded")
            return
        try:
            outcome = await self._processor.apply(event, identity)
        except Rejected as rejected:
            if rejected.answer is not None:
                await self._publisher.publish_outcome(rejected.answer)
            await self._dead_letter(message, settle, rejected.reason, rejected.detail, event.type)
            return
        if outcome.applied_before and not looks_first and await self._replayed(message, event, identity, settle):
            return
        # Record, then publish, then ack: a worker that dies after the publish leaves the record, so
        # the redelivery re-publishes exactly these bytes instead of running the command again. A
        # turn-only outcome (every chat message) needs no record: a replay rebuilds it.
        if not outcome.rebuilt_on_replay:
            await self._outcomes.record(identity, outcome)
        await self._publisher.publish_outcome(outcome)
        stages.mark(stages.CONFIRMED)
        await settle(message)
        self.metrics.event(event.type, "applied")
        if log.isEnabledFor(logging.DEBUG):
            sessions = [turn.session_id for turn in outcome.turns] + [reply.session_id for reply in outcome.replies]
            session_id = next((sid for sid in sessions if sid), None)
            log.debug(
                "applied",
                extra={
                    "event_id": event.event_id,
                    "event_type": event.type,
                    "session_id": session_id,
                    "outcome": "applied",
                },
            )
        waited = time.time() - event.occurred_at.timestamp()
        if 0 <= waited < 86_400:  # ignore clocks that disagree wildly
            self.metrics.end_to_end_seconds.observe(waited)

    async def _replayed(
        self,
        message: AbstractIncomingMessage,
        event: InboundEvent,
        identity: Identity,
        settle: Settle,
        *,
        legacy: bool = True,
    ) -> bool:
        """Re-publish the recorded outcome of an event applied before (same ids, same texts); a key
        recorded for another event is dead-lettered as a conflict. False: nothing recorded."""
        try:
            recorded = await self._outcomes.recorded(identity, legacy_filter(event) if legacy else None)
        except EventIdConflict as conflict:
            await self._dead_letter(message, settle, "event-id-conflict", str(conflict), event.type)
            return True
        if recorded is None:
            return False
        await self._publisher.publish_outcome(recorded)
        await settle(message)
        self.metrics.event(event.type, "replayed")
        return True

    async def _entry_of_another(
        self, message: AbstractIncomingMessage, event: InboundEvent, identity: Identity, settle: Settle
    ) -> bool:
        """A command's key that a chat message's entry holds: dead-lettered as a conflict."""
        if not await self._processor.entry_holds(identity.key):
            return False
        detail = f"event id {identity.event_id!r} was used before in this chat for another event"
        await self._dead_letter(message, settle, "event-id-conflict", detail, event.type)
        return True

    async def _refuse(self, message: AbstractIncomingMessage, settle: Settle, bad: BadInput) -> None:
        """Dead-letter bad input; a chat that sent it is told what was wrong first."""
        if bad.chat is not None:
            body_id = hashlib.blake2b(message.body, digest_size=16).hexdigest()
            answer = self._processor.answer_rejected(bad.chat, bad.detail, body_id)
            await self._publisher.publish_outcome(answer)
        await self._dead_letter(message, settle, bad.reason, bad.detail)

    async def _dead_letter(
        self, message: AbstractIncomingMessage, settle: Settle, reason: str, detail: str, event_type: str = "invalid"
    ) -> None:
        log.warning(
            "dead-lettering message %s: %s: %s",
            message.message_id,
            reason,
            detail[:200],
            extra={"event_id": message.message_id, "outcome": "dead_lettered"},
        )
        body, redacted = await self._processor.redacting.dead_letter_body(message.body)
        await self._publisher.dead_letter(message, reason, detail, body=body, redacted=redacted)
        await settle(message)
        self.metrics.event(event_type, "dead_lettered")
        self.metrics.dead_letters.labels(reason).inc()

    async def _retrying(
        self, message: AbstractIncomingMessage, settle: Settle, step: Callable[[], Awaitable[None]]
    ) -> None:
        """Run `step` until it succeeds. Transient faults retry with back-off for as long as the
        worker runs (the lane waits, keeping order); an unwell store is reported to the store's
        health (one log line per change, not per event) and waited out until its probe says it
        is well again (or the back-off runs out); a bug is dead-lettered after a few tries."""
        delay, bugs = 0.05, 0
        while True:
            try:
                await step()
                return
            except StoreUnavailable as exc:
                self._health.failed(exc)
                log.debug("store unavailable under %s: %s", message.message_id, exc, extra=_ids(message))
                if self._stopping.is_set() or channel_closed(message):
                    return  # left unacked: the broker redelivers it to whoever owns the shard next
                await self._health.wait_recovered(within=delay)
                delay = min(delay * 2, 5.0)
                continue
            except _TRANSIENT as exc:
                if channel_closed(message):
                    # The delivery died with its channel; the broker hands the message out again.
                    log.info(
                        "channel closed under %s; leaving it to redelivery", message.message_id, extra=_ids(message)
                    )
                    return
                log.warning(
                    "transient failure on %s, retrying in %.2fs: %s",
                    message.message_id,
                    delay,
                    exc,
                    extra=_ids(message),
                )
            except Exception as exc:
                bugs += 1
                log.exception("failed to apply %s (attempt %d)", message.message_id, bugs, extra=_ids(message))
                if bugs >= MAX_BUG_ATTEMPTS:
                    dead_letter = functools.partial(self._dead_letter, message, settle, "error", repr(exc))
                    await self._retrying(message, settle, dead_letter)
                    return
            if self._stopping.is_set():
                return  # left unacked: the broker redelivers it to whoever owns the shard next
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
