"""Declare the exchanges and queues (idempotent): `sessions topology` and every worker start."""

from __future__ import annotations

from aio_pika import ExchangeType
from aio_pika.abc import AbstractChannel, AbstractConnection
from aiormq.abc import FieldTable

from schemas.topology import Topology


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


async def declare_topology(channel: AbstractChannel, names: Topology, *, delivery_limit: int) -> None:
    inbound = await channel.declare_exchange(names.inbound_exchange, ExchangeType.X_CONSISTENT_HASH, durable=True)
    dlx = await channel.declare_exchange(names.dead_letter_exchange, ExchangeType.FANOUT, durable=True)
    dead = await channel.declare_queue(names.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"})
    await dead.bind(dlx, routing_key="")
    for name in names.shard_queues():
        queue = await channel.declare_queue(name, durable=True, arguments=shard_arguments(names, delivery_limit))
        await queue.bind(inbound, routing_key="1")  # equal weight on the hash ring
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


async def declare_topology_once(connection: AbstractConnection, names: Topology, *, delivery_limit: int) -> None:
    """Declare on a channel of its own, closed afterwards. A robust channel declares again whatever
    it declared after every reconnect, and in a cluster a classic queue whose node is down (the
    reply outbox, the query queue) would then fail every reconnect of the connection."""
    channel = await connection.channel()
    try:
        await declare_topology(channel, names, delivery_limit=delivery_limit)
    finally:
        await channel.close()
