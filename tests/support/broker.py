"""Real-broker test support: reachability (fail under CI, skip elsewhere), isolated topologies,
in-process workers and taps that collect what the workers publish."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlparse

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection

from schemas.topology import DEFAULT_DELIVERY_LIMIT, Topology
from tests.support.backends import WorkerStore
from worker import create_session_manager
from worker.amqp.connection import connect
from worker.amqp.gateway import GatewayClient
from worker.amqp.service import WorkerService
from worker.amqp.taps import bound_queue
from worker.amqp.topology import declare_topology_once, delete_topology
from worker.config import Settings
from worker.engine.clock import Clock, system_clock
from worker.engine.tokens import TokenCounter
from worker.sessions.manager import SessionManager
from worker.sessions.options import options_from_settings

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def broker_reachable(url: str = AMQP_URL) -> bool:
    parsed = urlparse(url)
    try:
        socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 5672), 2).close()
    except OSError:
        return False
    return True


def require_broker() -> str:
    if broker_reachable():
        return AMQP_URL
    message = f"RabbitMQ is not reachable at {urlparse(AMQP_URL).hostname}:{urlparse(AMQP_URL).port or 5672}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; broker tests must run in CI (start it with `make broker`)")
    pytest.skip(f"{message}; set AMQP_URL or run `make broker`")


@asynccontextmanager
async def isolated_topology(url: str, shards: int = 4) -> AsyncIterator[Topology]:
    """A fresh name prefix per test, deleted afterwards (quorum queues outlive connections)."""
    names = Topology(prefix=f"t{uuid.uuid4().hex[:10]}", shards=shards)
    try:
        yield names
    finally:
        connection = await aio_pika.connect(url)
        async with connection:
            await delete_topology(connection, names)


class Tap:
    """Collects every message published to an exchange, keyed by `inReplyTo` and in arrival order."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.by_reply: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.routing_keys: list[str] = []
        self.headers: list[dict[str, Any]] = []
        self.bodies: list[bytes] = []
        self._changed = asyncio.Condition()

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            doc = json.loads(message.body)
        except (ValueError, RecursionError):  # dead-lettered garbage: invalid UTF-8, JSON or nesting
            doc = {"raw": message.body.decode(errors="replace")}
        if not isinstance(doc, dict):
            doc = {"raw": doc}
        async with self._changed:
            self.items.append(doc)
            self.routing_keys.append(message.routing_key or "")
            self.headers.append(dict(message.headers or {}))
            self.bodies.append(message.body)
            if "inReplyTo" in doc:
                self.by_reply[doc["inReplyTo"]].append(doc)
            self._changed.notify_all()

    async def wait_for(self, in_reply_to: str, count: int = 1, timeout: float = 15) -> list[dict[str, Any]]:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self.by_reply.get(in_reply_to, [])) >= count)
        return self.by_reply[in_reply_to]

    async def wait_count(self, count: int, timeout: float = 60) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self.items) >= count)


async def durable_tap_queue(channel: AbstractChannel, exchange: str) -> AbstractQueue:
    """A quorum queue bound to `exchange`, for taps that must miss nothing while the broker restarts
    or loses a node (an exclusive queue dies with its connection). Only for private broker nodes:
    nothing deletes it."""
    queue = await channel.declare_queue(f"{exchange}.tap", durable=True, arguments={"x-queue-type": "quorum"})
    await queue.bind(await channel.get_exchange(exchange, ensure=True), routing_key="#")
    return queue


async def _consume_durably(queue: AbstractQueue, tap: Tap) -> None:
    """Record, then ack: a delivery cut off by a lost connection comes again (and is recorded twice,
    which the checks allow), instead of being lost."""

    async def record(message: AbstractIncomingMessage) -> None:
        await tap.on_message(message)
        with contextlib.suppress(Exception):  # a stale channel: the broker redelivers it
            await message.ack()

    await queue.consume(record)


class BrokerHarness:
    """Workers, a gateway and taps on one isolated topology, sharing one store (SQLite or MongoDB).

    `url` may list several broker nodes, comma-separated (the harness fails over like a worker);
    `durable_taps` makes the taps quorum queues that outlive broker restarts (private nodes only).
    """

    def __init__(
        self,
        url: str,
        names: Topology,
        store: WorkerStore,
        counter: TokenCounter,
        clock: Clock = system_clock,
        *,
        durable_taps: bool = False,
    ) -> None:
        self.url = url
        self.durable_taps = durable_taps
        self.names = names
        self.store = store
        self.counter = counter
        self.clock = clock
        self.workers: list[WorkerService] = []
        self.managers: list[SessionManager] = []
        self.replies = Tap()
        self.turns = Tap()
        self.notices = Tap()
        self.dead = Tap()
        self._connection: AbstractRobustConnection | None = None
        self.gateway: GatewayClient | None = None
        self.scheduler: GatewayClient | None = None  # publishes as the scheduler: validated user-id

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "AMQP_URL": self.url,
            "topology_prefix": self.names.prefix,
            "shards": self.names.shards,
            **self.store.options(),
            "heartbeat_seconds": 0.2,
            "worker_id": f"w{len(self.workers)}-{uuid.uuid4().hex[:6]}",
            "shutdown_grace_seconds": 10,
            "admins": "telegram:admin",
        }
        values.update(overrides)
        return Settings(**values)

    async def start_worker(self, **overrides: Any) -> WorkerService:
        settings = self.settings(**overrides)
        manager = create_session_manager(
            clock=self.clock, token_counter=self.counter, **options_from_settings(settings)
        )
        await manager.open()
        worker = WorkerService(settings, manager, self.clock)
        await worker.start()
        self.workers.append(worker)
        self.managers.append(manager)
        return worker

    async def open(self) -> BrokerHarness:
        self._connection = await connect(self.url)

        await declare_topology_once(self._connection, self.names, delivery_limit=DEFAULT_DELIVERY_LIMIT)
        channel = await self._connection.channel()
        if self.durable_taps:
            await channel.set_qos(prefetch_count=1000)  # acked consumers: bound what is in flight
        for tap, exchange in (
            (self.replies, self.names.reply_exchange),
            (self.turns, self.names.turn_exchange),
            (self.notices, self.names.notice_exchange),
            (self.dead, self.names.dead_letter_exchange),
        ):
            if self.durable_taps:
                await _consume_durably(await durable_tap_queue(channel, exchange), tap)
            else:
                queue = await bound_queue(channel, exchange)
                await queue.consume(tap.on_message, no_ack=True)
        self.gateway = await GatewayClient.open(self._connection, self.names)
        self.scheduler = await GatewayClient.open(self._connection, self.names, user_id=self.settings().broker_user())
        return self

    async def close(self) -> None:
        for worker in self.workers:
            await worker.stop()
        for manager in self.managers:
            await manager.close()
        if self._connection is not None:
            await self._connection.close()

    @property
    def manager(self) -> SessionManager:
        return self.managers[0]
