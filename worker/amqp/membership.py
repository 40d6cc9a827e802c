"""Live workers, learned from heartbeats on a fanout exchange; no database involved."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from aio_pika import DeliveryMode, Message
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage

log = logging.getLogger(__name__)
OnChange = Callable[[frozenset[str]], Awaitable[None]]


class Membership:
    def __init__(
        self, channel: AbstractChannel, exchange: str, worker_id: str, interval: float, on_change: OnChange
    ) -> None:
        self.worker_id = worker_id
        self._exchange_name = exchange
        self._channel = channel
        self._interval = interval
        self._on_change = on_change
        self._seen: dict[str, float] = {worker_id: time.monotonic()}
        self._exchange: AbstractExchange | None = None
        self._task: asyncio.Task[None] | None = None
        self._current: frozenset[str] = frozenset()
        self._answers: set[asyncio.Task[None]] = set()  # beats answering a newcomer, until sent

    @property
    def timeout(self) -> float:
        return self._interval * 3.5

    def live(self) -> frozenset[str]:
        horizon = time.monotonic() - self.timeout
        return frozenset(worker for worker, seen in self._seen.items() if seen >= horizon or worker == self.worker_id)

    async def start(self) -> None:
        self._exchange = await self._channel.get_exchange(self._exchange_name, ensure=True)
        # Named inside the topology's prefix (the worker's broker user may declare only there), and
        # unique per start: a restarted worker must not wait for its predecessor's queue to go.
        name = f"{self._exchange_name}.{self.worker_id}.{uuid.uuid4().hex[:8]}"
        queue = await self._channel.declare_queue(name, exclusive=True, auto_delete=True)
        await queue.bind(self._exchange)
        await queue.consume(self._on_heartbeat, no_ack=True)
        await self._beat(leaving=False)
        # Listen for a moment before claiming shards, so a new worker does not grab them all.
        await asyncio.sleep(self._interval * 1.5)
        self._task = asyncio.create_task(self._loop())
        await self._check()

    async def leave(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        try:
            await self._beat(leaving=True)
        except Exception:  # the broker may already be gone; the others will time us out
            log.info("could not announce leaving; peers will notice the missing heartbeats")

    def silence(self) -> None:
        """Stop heartbeats without a goodbye, as a crashed worker would."""
        if self._task is not None:
            self._task.cancel()

    async def _loop(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self._beat(leaving=False)
                await self._check()
            except Exception as exc:
                # Usually the broker is away (a restart, a lost node) until the robust connection
                # is back: one warning per outage, with the details once.
                if not failing:
                    log.warning("heartbeat failed (%s); retrying every %.2fs", exc, self._interval, exc_info=True)
                failing = True
            else:
                if failing:
                    log.info("heartbeats resumed")
                failing = False

    async def _beat(self, *, leaving: bool) -> None:
        """One heartbeat, confirmed. Bounded: a broker that blocks publishers (a memory or disk
        alarm) never confirms, and a beat that hangs would stall the loop, or a stop."""
        assert self._exchange is not None
        body = json.dumps({"worker": self.worker_id, "leaving": leaving}).encode()
        async with asyncio.timeout(max(self._interval * 2, 1.0)):
            await self._exchange.publish(
                Message(body, delivery_mode=DeliveryMode.NOT_PERSISTENT, expiration=10), routing_key=""
            )

    async def _on_heartbeat(self, message: AbstractIncomingMessage) -> None:
        try:
            beat = json.loads(message.body)
            worker, leaving = str(beat["worker"]), bool(beat.get("leaving"))
        except (ValueError, KeyError, TypeError):
            return
        if leaving:
            self._seen.pop(worker, None)
            await self._check()
            return
        if worker not in self._seen:
            self._answer()
        self._seen[worker] = time.monotonic()

    def _answer(self) -> None:
        """Beat at once for a worker heard for the first time: its queue may have been bound after
        this worker's last beat, and the next one comes only after a whole interval, later than
        the newcomer's listening moment, so it would claim every shard and hand half of them back
        a few beats later."""
        answer = asyncio.ensure_future(self._beat(leaving=False))
        self._answers.add(answer)
        answer.add_done_callback(self._answered)

    def _answered(self, answer: asyncio.Task[None]) -> None:
        self._answers.discard(answer)
        if not answer.cancelled() and answer.exception() is not None:
            log.info("could not answer a new worker's heartbeat; the next beat will")

    async def _check(self) -> None:
        live = self.live()
        if live != self._current:
            log.info("live workers: %s", ", ".join(sorted(live)))
            await self._on_change(live)
            # Only once applied: a rebalance cut short (say, by a lost connection) runs again on
            # the next beat instead of leaving shards unowned until the membership changes.
            self._current = live
