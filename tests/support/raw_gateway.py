"""A gateway that publishes bytes, as one written in another language does: no pydantic models on the
way out, so tests can publish exactly the JSON (or the garbage) they mean."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aio_pika
from aio_pika.abc import AbstractExchange

from schemas.topology import HEADER_DEAD_DETAIL, HEADER_DEAD_REASON, Topology


class RawGateway:
    def __init__(self, exchange: AbstractExchange) -> None:
        self._exchange = exchange

    async def publish(self, body: bytes | dict[str, Any], routing_key: str, *, message_id: str | None = None) -> None:
        """Publish and wait for the broker's confirm; a dict is sent as compact JSON."""
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        if message_id is None and isinstance(body, dict):
            # AMQP's message-id is a short string: at most 255 bytes.
            message_id = str(body.get("eventId", "")).encode()[:255].decode(errors="ignore") or None
        message = aio_pika.Message(
            data,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message_id,
        )
        await self._exchange.publish(message, routing_key=routing_key)


@asynccontextmanager
async def raw_gateway(url: str, names: Topology) -> AsyncIterator[RawGateway]:
    connection = await aio_pika.connect(url.split(",")[0])
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        yield RawGateway(await channel.get_exchange(names.inbound_exchange, ensure=True))


async def dead_letters(url: str, names: Topology) -> list[tuple[str, str]]:
    """Takes everything off the dead-letter queue: (reason, detail) from each copy's headers."""
    connection = await aio_pika.connect(url.split(",")[0])
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(names.dead_letter_queue)
        found = []
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            headers = message.headers or {}
            found.append((str(headers.get(HEADER_DEAD_REASON)), str(headers.get(HEADER_DEAD_DETAIL))))
        return found
