"""The worker process: topology, shard ownership, consuming, and a graceful stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Coroutine
from typing import Any

from aio_pika.abc import AbstractRobustConnection

from schemas.topology import Topology
from worker.amqp.connection import close_within, connect, use_write_buffer
from worker.amqp.consumer import EventHandler
from worker.amqp.membership import Membership
from worker.amqp.poison import PoisonGuard
from worker.amqp.publisher import Publisher
from worker.amqp.queries import QueryResponder
from worker.amqp.stage_log import StageLog
from worker.amqp.subscription import ShardSubscription, lanes_for
from worker.amqp.topology import declare_topology_once
from worker.amqp.trust import ControlTrust
from worker.config import Settings
from worker.engine.clock import Clock
from worker.service.metrics import WorkerMetrics
from worker.service.outcome_log import OutcomeLog
from worker.service.processor import EventProcessor
from worker.service.shards import owned_shards
from worker.sessions.manager import SessionManager
from worker.stores.health import PROBE_TIMEOUT, StoreHealth, probe_once, watch

log = logging.getLogger(__name__)
__all__ = ["WorkerService", "connect"]
# The goodbye heartbeat waits at most this long (peers time a silent worker out anyway), and the
# channels and connections get this long to close after the drain: what a stop takes past the grace.
LEAVE_SECONDS = 2.0
CLOSE_SECONDS = 2.0


async def _bounded(what: str, seconds: float, step: Awaitable[object]) -> None:
    """Wait for `step` at most `seconds`, then go on without it (a stop must end)."""
    try:
        async with asyncio.timeout(seconds):
            await step
    except TimeoutError:
        log.warning("stopping: %s did not finish within %.1fs; going on without it", what, seconds)


WATCH_INTERVAL = 0.5  # how often the intake gate looks at the broker's block and the store


class WorkerService:
    def __init__(self, settings: Settings, manager: SessionManager, clock: Clock) -> None:
        self.settings = settings
        self.worker_id = settings.worker_id
        self.topology = Topology(settings.topology_prefix, settings.shards)
        self._manager = manager
        self._clock = clock
        self._stopping = asyncio.Event()
        self._connection: AbstractRobustConnection | None = None
        self._query_connection: AbstractRobustConnection | None = None
        self._subscriptions: dict[int, ShardSubscription] = {}
        self._membership: Membership | None = None
        self._rebalance_lock = asyncio.Lock()
        self.handler: EventHandler | None = None
        self._queries: QueryResponder | None = None
        self.metrics = WorkerMetrics()
        self.ready = asyncio.Event()
        self.health = StoreHealth()
        self.health.on_change(lambda _well: self._regate_soon())
        self._consuming = True  # the intake gate: False while the store is unwell or the broker blocks
        self._gate_lock = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()
        self._stage_log: StageLog | None = None  # only while the benchmark asks for one
        self.metrics.store_available.set_function(lambda: 1.0 if self.health.well else 0.0)
        self.metrics.intake_open.set_function(lambda: 1.0 if self._consuming else 0.0)

    @property
    def consuming(self) -> bool:
        """Whether the intake gate lets new deliveries in (see _regate)."""
        return self._consuming

    @property
    def owned(self) -> frozenset[int]:
        return frozenset(self._subscriptions)

    async def start(self) -> None:
        settings = self.settings
        use_write_buffer(settings.advanced.write_buffer_frames)  # before the connections open
        self._connection = await connect(settings.amqp_url.get_secret_value())
        await declare_topology_once(self._connection, self.topology, delivery_limit=settings.delivery_limit)
        channel = await self._connection.channel(publisher_confirms=True)
        publisher = await Publisher(channel, self.topology, user_id=settings.broker_user()).open()
        processor = EventProcessor(
            self._manager, self._clock, max_reply_chars=settings.max_reply_chars, on_redacted=self.metrics.redacted
        )
        self.handler = EventHandler(
            processor,
            OutcomeLog(self._manager.store, self._manager.transcript.codec, self._clock),
            publisher,
            self._clock,
            self._stopping,
            self.metrics,
            max_payload_bytes=settings.max_payload_bytes,
            trust=ControlTrust(scheduler_user=settings.control_user(), worker_user=settings.broker_user()),
            health=self.health,
            poison=PoisonGuard(self._manager.store, self._clock, settings.poison_attempts),
        )
        advanced = settings.advanced
        if advanced.stage_log_dir is not None:
            self._stage_log = StageLog(advanced.stage_log_dir, advanced.ack_delay_ms / 1000 + 1.0)
            self._spawn(self._stage_log.run())
        self._lanes = lanes_for(self.handler, self._stage_log)
        # Every worker answers queries (competing consumers): they only read. On a connection of
        # their own: the query queue is a classic queue, and while its node is down its consumer
        # cannot be restored, which would hold up the shards' reconnect if they shared one.
        self._query_connection = await connect(settings.amqp_url.get_secret_value())
        self._queries = QueryResponder(await self._query_connection.channel(), self._manager, publisher, self.topology)
        await self._queries.start()
        self._membership = Membership(
            await self._connection.channel(),
            self.topology.workers_exchange,
            self.worker_id,
            settings.heartbeat_seconds,
            self._rebalance,
        )
        await self._membership.start()
        self._spawn(self._watch())
        self.ready.set()

    async def _rebalance(self, live: frozenset[str]) -> None:
        async with self._rebalance_lock:
            if self._stopping.is_set() or self._connection is None:
                return
            wanted = owned_shards(self.worker_id, live, self.settings.shards)
            leaving = [self._subscriptions.pop(s) for s in sorted(set(self._subscriptions) - wanted)]
            await asyncio.gather(*(sub.release(self.settings.shutdown_grace_seconds) for sub in leaving))
            fresh: dict[int, ShardSubscription] = {}
            for shard in sorted(wanted - set(self._subscriptions)):
                subscription = ShardSubscription(
                    self._connection,
                    self.topology.shard_queue(shard),
                    self._lanes,
                    self.settings.prefetch,
                    self.settings.advanced.ack_delay_ms / 1000,
                    self._stage_log,
                )
                fresh[shard] = subscription
            await self._start_all(fresh)
            self.metrics.owned_shards.set(len(self._subscriptions))
            log.info("worker %s owns %d shards: %s", self.worker_id, len(wanted), sorted(wanted))

    async def _start_all(self, fresh: dict[int, ShardSubscription]) -> None:
        """Start the new subscriptions at once (one after another, each would wait for its broker
        round trips behind the deliveries of those started before it). Those that started are
        kept when another fails; the first failure is raised."""
        paused = not self._consuming
        outcomes = await asyncio.gather(*(sub.start(paused=paused) for sub in fresh.values()), return_exceptions=True)
        failures = []
        for (shard, subscription), outcome in zip(fresh.items(), outcomes, strict=True):
            if isinstance(outcome, BaseException):
                failures.append(outcome)
            else:
                self._subscriptions[shard] = subscription
        if failures:
            raise failures[0]

    async def stop(self) -> None:
        """SIGTERM: stop taking work, finish and ack what is in flight, then leave, all within
        `shutdown_grace_seconds` plus CLOSE_SECONDS. Every step that waits for the broker is
        bounded: a broker that blocks publishers (memory or disk alarm) or is gone never answers,
        and whatever is not acked by then is redelivered to the next owner of its shard."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        await self._stop_background()
        loop = asyncio.get_running_loop()
        ends = loop.time() + self.settings.shutdown_grace_seconds

        def left() -> float:
            return max(ends - loop.time(), 0.0)

        if self._membership is not None:
            await _bounded("the goodbye heartbeat", min(LEAVE_SECONDS, left()), self._membership.leave())
        if self._queries is not None:
            await _bounded("stopping the query consumer", left(), self._queries.stop(left()))
        subscriptions = await self._take_subscriptions(left())
        releases = asyncio.gather(*(s.release(left()) for s in subscriptions))
        await _bounded("releasing the shards", left() + CLOSE_SECONDS / 2, releases)
        await self._close_connections(CLOSE_SECONDS / 2)
        log.info("worker %s stopped", self.worker_id)

    async def _take_subscriptions(self, within: float) -> list[ShardSubscription]:
        """Every shard subscription, once no rebalance is changing them (a rebalance stuck on an
        unanswering broker is not waited for past `within`)."""
        try:
            async with asyncio.timeout(within):
                await self._rebalance_lock.acquire()
        except TimeoutError:
            log.warning("stopping: a rebalance still runs after %.1fs; releasing the shards anyway", within)
        else:
            self._rebalance_lock.release()  # _rebalance sees _stopping and changes nothing from now on
        subscriptions = list(self._subscriptions.values())
        self._subscriptions.clear()
        return subscriptions

    async def _close_connections(self, within: float = CLOSE_SECONDS) -> None:
        for connection in (self._query_connection, self._connection):
            if connection is not None:
                await close_within(connection, within / 2)

    async def abort(self) -> None:
        """Die as a crash would: drop the connection and abandon in-flight work (for fault tests)."""
        self._stopping.set()
        await self._stop_background()
        if self._membership is not None:
            self._membership.silence()
        await self._lanes.cancel()
        await self._close_connections()

    async def run_until(self, stop: asyncio.Event) -> None:
        """Start, serve until `stop` is set, then stop gracefully; a stop during start-up (say, while
        the broker is unreachable) abandons the start instead of waiting for it."""
        starting = asyncio.create_task(self.start())
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
        else:
            starting.result()  # a failed start is an error, not a silent stop
            await stopped
        stopped.cancel()
        await self.stop()

    async def readiness(self) -> tuple[bool, str]:
        """Ready when connected to the broker and not blocked by it, holding a membership, and the
        store takes a write; a worker that is not ready takes no new deliveries (see _watch)."""
        if self._stopping.is_set():
            return False, "stopping"
        # `connected` is clear while a robust connection is reconnecting (it is not "closed" then).
        if not self.ready.is_set() or self._connection is None or not self._connection.connected.is_set():
            return False, "not connected to RabbitMQ (connecting or reconnecting)"
        if await self._blocked():
            return False, "RabbitMQ blocks this connection (a memory or disk alarm)"
        # A write, so that a full disk shows even without traffic.
        answered = self.health.well and await probe_once(self.health, self._probe)
        if not self.health.well:
            return False, f"store unavailable: {self.health.reason}"
        if not answered:
            return False, f"store did not take a write within {PROBE_TIMEOUT:.0f}s"
        return True, "ok"

    async def _probe(self) -> None:
        await self._manager.store.check_writable(self._clock())

    async def _blocked(self) -> bool:
        """Whether the broker has blocked the connection (connection.blocked): aiormq's `ready()`
        waits while it is blocked, and returns at once otherwise."""
        transport = None if self._connection is None else self._connection.transport
        if transport is None:
            return False
        try:
            async with asyncio.timeout(0.05):
                await transport.connection.ready()
        except TimeoutError:
            return True
        return False

    async def _watch(self) -> None:
        """The intake gate: consume while the store is well and the broker does not block us;
        while the store is unwell, probe it with back-off (what declares it well again)."""
        await watch(self.health, self._probe, self._stopping, self._regate, WATCH_INTERVAL)

    async def _regate(self) -> None:
        async with self._gate_lock:
            blocked = await self._blocked()
            wanted = self.health.well and not blocked
            if wanted == self._consuming:
                return
            self._consuming = wanted
            if wanted:
                log.info("taking new deliveries again")
            else:
                why = "RabbitMQ blocks the connection"
                if not blocked:
                    why = f"the store is unavailable ({self.health.reason})"
                log.warning("taking no new deliveries while %s; holding those in flight, in order", why)
            async with self._rebalance_lock:
                subscriptions = list(self._subscriptions.values())
                await asyncio.gather(*(s.resume() if wanted else s.pause() for s in subscriptions))

    def _regate_soon(self) -> None:
        if not self._stopping.is_set():
            self._spawn(self._regate())

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _stop_background(self) -> None:
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
