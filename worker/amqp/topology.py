"""Declare the exchanges and queues (idempotent): `sessions topology` and every worker start."""

from __future__ import annotations

import logging

from aio_pika import ExchangeType
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange, AbstractQueue
from aio_pika.exceptions import AMQPError, ChannelPreconditionFailed
from aiormq.abc import FieldTable
from aiormq.exceptions import ChannelAccessRefused

from schemas.topology import Topology

log = logging.getLogger(__name__)

# x-modulus-hash (the rabbitmq_sharding plugin): queue = phash2(routing key) mod shards, over the
# shard queues in name order. Unlike x-consistent-hash, whose ring RabbitMQ rebuilds on boot in
# binding-recovery order (a restarted broker moved chats to other shards, and a chat with events
# on both sides of the restart could be applied out of order), the mapping never changes.
INBOUND_EXCHANGE_TYPE = "x-modulus-hash"
SHARD_BINDING_KEY = "shard"
PLUGIN = "rabbitmq_sharding"


def shard_arguments(names: Topology, delivery_limit: int) -> FieldTable:
    return {
        "x-queue-type": "quorum",
        # One consumer at a time per shard keeps each slot's events in publish order.
        "x-single-active-consumer": True,
        # A message that keeps failing (a crash loop) is dead-lettered instead of blocking its shard.
        "x-delivery-limit": delivery_limit,
        "x-dead-letter-exchange": names.dead_letter_exchange,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


class MissingPlugin(RuntimeError):
    """The broker lacks the exchange type the inbound exchange needs."""


class TopologyMismatch(RuntimeError):
    """A queue exists with other arguments than these settings give it (RabbitMQ refuses to change
    them in place): most often SESSIONS_DELIVERY_LIMIT."""


async def _declare_shard(channel: AbstractChannel, name: str, arguments: FieldTable) -> AbstractQueue:
    try:
        return await channel.declare_queue(name, durable=True, arguments=arguments)
    except ChannelPreconditionFailed as exc:
        hint = ""
        if "x-delivery-limit" in str(exc):
            hint = (
                " set SESSIONS_DELIVERY_LIMIT to the value it was declared with (the worker's poison detection,"
                " SESSIONS_POISON_ATTEMPTS, works either way), or move to a new SESSIONS_TOPOLOGY_PREFIX"
                " after draining the old queues;"
            )
        message = f"shard queue {name} exists with other arguments: {exc};{hint} see ops/README.md, Upgrading"
        raise TopologyMismatch(message) from exc


async def _declare_inbound(channel: AbstractChannel, names: Topology) -> AbstractExchange:
    try:
        return await channel.declare_exchange(names.inbound_exchange, INBOUND_EXCHANGE_TYPE, durable=True)
    except AMQPError as exc:
        if "unknown exchange type" not in str(exc):
            raise
        raise MissingPlugin(
            f"RabbitMQ has no {INBOUND_EXCHANGE_TYPE} exchange type: enable its plugin with "
            f"`rabbitmq-plugins enable {PLUGIN}` (ops/scripts/ensure-broker.sh does it for a local broker)"
        ) from exc


async def declare_topology(channel: AbstractChannel, names: Topology, *, delivery_limit: int) -> None:
    inbound = await _declare_inbound(channel, names)
    dlx = await channel.declare_exchange(names.dead_letter_exchange, ExchangeType.FANOUT, durable=True)
    dead = await channel.declare_queue(names.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"})
    await dead.bind(dlx, routing_key="")
    for name in names.shard_queues():
        queue = await _declare_shard(channel, name, shard_arguments(names, delivery_limit))
        # One binding key for all: the exchange orders its queues by name, so the same key reaches
        # the same shard on every node and after every restart.
        await queue.bind(inbound, routing_key=SHARD_BINDING_KEY)
    replies = await channel.declare_exchange(names.reply_exchange, ExchangeType.TOPIC, durable=True)
    # Real dispatchers bind their own queues by channel ("telegram.#"); the outbox is a bounded tap.
    outbox = await channel.declare_queue(
        names.reply_outbox_queue, durable=True, arguments={"x-max-length": 100_000, "x-overflow": "drop-head"}
    )
    await outbox.bind(replies, routing_key="#")
    for name in (names.turn_exchange, names.notice_exchange, names.summarize_exchange):
        await channel.declare_exchange(name, ExchangeType.TOPIC, durable=True)
    await channel.declare_exchange(names.workers_exchange, ExchangeType.FANOUT, durable=True)
    await channel.declare_queue(names.query_queue, durable=True)


async def delete_topology(connection: AbstractConnection, names: Topology) -> None:
    """Delete every queue and exchange of `names` (quorum queues outlive their consumers): for
    test runs and benchmarks that declared a topology of their own."""
    channel = await connection.channel()
    try:
        for queue in names.queues():
            await channel.queue_delete(queue)
        for exchange in names.exchanges():
            await channel.exchange_delete(exchange)
    finally:
        await channel.close()


async def declare_topology_once(connection: AbstractConnection, names: Topology, *, delivery_limit: int) -> None:
    """Declare on a channel of its own, closed afterwards. A robust channel declares again whatever
    it declared after every reconnect, and in a cluster a classic queue whose node is down (the
    reply outbox, the query queue) would then fail every reconnect of the connection."""
    channel = await connection.channel()
    try:
        await declare_topology(channel, names, delivery_limit=delivery_limit)
    finally:
        await channel.close()


async def declare_topology_if_allowed(connection: AbstractConnection, names: Topology, *, delivery_limit: int) -> None:
    """Declare the topology unless this broker user may not (the scheduler's least-privilege user
    only publishes): then `sessions topology` or the workers declare it, and this only logs so."""
    try:
        await declare_topology_once(connection, names, delivery_limit=delivery_limit)
    except ChannelAccessRefused as exc:
        log.info("not declaring the topology (%s); `sessions topology` and the workers declare it", exc)
