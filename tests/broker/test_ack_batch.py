"""Batched acks on the real broker: every finished delivery is settled, the unfinished one is not."""

from __future__ import annotations

import asyncio
import random
import uuid

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage

from worker.amqp.acks import AckBatch

pytestmark = pytest.mark.broker


async def test_batched_acks_settle_all_finished_deliveries_and_only_those(amqp_url: str) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        setup = await connection.channel()
        name = f"t{uuid.uuid4().hex[:10]}.acks"
        queue = await setup.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})
        try:
            for number in range(40):
                await setup.default_exchange.publish(aio_pika.Message(str(number).encode()), routing_key=name)
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=64)
            batch = AckBatch(delay=0.02, limit=8)
            received: list[AbstractIncomingMessage] = []
            all_in = asyncio.Event()

            async def on_message(message: AbstractIncomingMessage) -> None:
                batch.started(message)
                received.append(message)
                if len(received) == 40:
                    all_in.set()

            await (await channel.get_queue(name)).consume(on_message)
            async with asyncio.timeout(20):
                await all_in.wait()
            left = received[17]  # still running when its channel closes
            finished = [message for message in received if message is not left]
            random.Random(7).shuffle(finished)  # lanes finish out of delivery order
            for message in finished:
                await batch.ack(message)
                await asyncio.sleep(0.001)
            await batch.flush()
            await channel.close()  # requeues whatever is still unacked

            again = await (await connection.channel()).get_queue(name)
            redelivered = []
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 3  # the requeue after a close takes the quorum queue a moment
            while loop.time() < deadline:
                got = await again.get(fail=False)
                if got is None:
                    await asyncio.sleep(0.05)
                    continue
                redelivered.append(got)
                await got.ack()
            assert [(m.body, m.redelivered) for m in redelivered] == [(left.body, True)]
        finally:
            await queue.delete(if_unused=False, if_empty=False)
