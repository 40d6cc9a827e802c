"""A worker's hold on one shard queue: its own channel, so releasing it requeues what was not started."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage, AbstractQueue, ConsumerTag
from aio_pika.exceptions import AMQPError, ChannelInvalidStateError

from worker.amqp.acks import AckBatch
from worker.amqp.consumer import EventHandler
from worker.service.lanes import Lanes

log = logging.getLogger(__name__)
CANCEL_TIMEOUT = 5.0  # a blocked connection may hold the cancel back


@dataclass(frozen=True, slots=True)
class Delivery:
    subscription: ShardSubscription
    message: AbstractIncomingMessage


def lanes_for(handler: EventHandler) -> Lanes[Delivery]:
    """Lanes that run the handler and report each finished delivery to its subscription."""

    async def run(delivery: Delivery) -> None:
        metrics = handler.metrics
        metrics.inflight_events += 1
        try:
            await handler.handle(delivery.message, delivery.subscription.acks.ack)
        finally:
            metrics.inflight_events -= 1
            delivery.subscription.finished()

    return Lanes(run)


class ShardSubscription:
    def __init__(
        self, connection: AbstractConnection, queue: str, lanes: Lanes[Delivery], prefetch: int, ack_delay: float
    ) -> None:
        self.queue = queue
        # Up to a quarter of the prefetch window waits for its ack: the broker keeps delivering.
        self.acks = AckBatch(ack_delay, prefetch // 4)
        self._connection = connection
        self._lanes = lanes
        self._prefetch = prefetch
        self._channel: AbstractChannel | None = None
        self._queue: AbstractQueue | None = None
        self._consumer: ConsumerTag | None = None
        self._paused = False
        self._releasing = False
        self._running = 0
        self._drained = asyncio.Event()
        self._drained.set()

    async def start(self, *, paused: bool = False) -> None:
        self._channel = await self._connection.channel(publisher_confirms=False)
        await self._channel.set_qos(prefetch_count=self._prefetch)
        self._queue = await self._channel.get_queue(self.queue, ensure=True)
        self._paused = paused
        if not paused:
            self._consumer = await self._queue.consume(self._on_message)
            log.info("consuming %s", self.queue)

    async def pause(self) -> None:
        """Take no new deliveries (basic.cancel); those already delivered still run, in order, and
        are acked on this channel as they finish."""
        self._paused = True
        tag, self._consumer = self._consumer, None
        if tag is not None and self._queue is not None:
            try:
                await self._queue.cancel(tag, timeout=CANCEL_TIMEOUT)
            except (AMQPError, ChannelInvalidStateError, ConnectionError, TimeoutError) as exc:
                # The channel is gone; its deliveries return to the queue anyway.
                log.info("%s: could not cancel the consumer (%s)", self.queue, exc)

    async def resume(self) -> None:
        self._paused = False
        if self._consumer is None and self._queue is not None and not self._releasing:
            self._consumer = await self._queue.consume(self._on_message)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self.acks.started(message)
        if self._releasing:
            return  # not started: stays unacked and returns to the queue when the channel closes
        self._running += 1
        self._drained.clear()
        # Keyed by routing key, which for applied events is the slot key: one slot, one lane.
        await self._lanes.run(message.routing_key or "", Delivery(self, message))

    def finished(self) -> None:
        """Called by the handler wrapper after each message of this shard."""
        self._running -= 1
        if self._running == 0:
            self._drained.set()

    async def release(self, grace: float) -> None:
        """Stop taking messages, finish the started ones, then close so the rest is requeued."""
        self._releasing = True
        try:
            async with asyncio.timeout(grace):
                await self._drained.wait()
        except TimeoutError:
            log.warning("%s: %d messages still running at release; they will be redelivered", self.queue, self._running)
        await self.acks.flush()  # before the close, which would requeue the finished ones too
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()
        log.info("released %s", self.queue)
