"""The reference: a bare aio-pika loop that consumes, publishes one reply with confirms, and acks.

Same broker, same quorum shard queues, same prefetch, the same freedom to handle deliveries
concurrently, the same ack batching (worker/amqp/acks.py, at the worker's default delay) and the
same garbage-collector settings as the worker; no other work. Run as its
own process by the benchmark:

    python -m benchmarks.bare_loop AMQP_URL PREFIX SHARDS PREFETCH
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from schemas.topology import Topology
from worker.amqp.acks import AckBatch
from worker.app.gc_tuning import tune_collector
from worker.config import Settings


async def run(url: str, names: Topology, prefetch: int) -> None:
    connection = await aio_pika.connect_robust(url)
    publish_channel = await connection.channel(publisher_confirms=True)
    replies = await publish_channel.get_exchange(names.turn_exchange)

    settings = Settings()  # the worker's defaults, for fairness

    def handler(acks: AckBatch) -> Callable[[AbstractIncomingMessage], Awaitable[None]]:
        async def handle(message: AbstractIncomingMessage) -> None:
            acks.started(message)
            reply = aio_pika.Message(
                message.body, message_id=message.message_id, delivery_mode=aio_pika.DeliveryMode.PERSISTENT
            )
            await replies.publish(reply, routing_key="main")
            await acks.ack(message)

        return handle

    tune_collector(settings.gc_young_threshold)
    for queue_name in names.shard_queues():
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        queue = await channel.get_queue(queue_name)
        # One batch per consumer channel, as the worker's shard subscriptions hold.
        await queue.consume(handler(AckBatch(settings.ack_delay_ms / 1000, prefetch // 4)))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await connection.close()


if __name__ == "__main__":
    url, prefix, shards, prefetch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    asyncio.run(run(url, Topology(prefix, shards), prefetch))
