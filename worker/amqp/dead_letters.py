"""Inspecting and replaying the dead-letter queue (`sessions dead-letters`)."""

from __future__ import annotations

from typing import Any

import aio_pika

from schemas.topology import HEADER_DEAD_DETAIL, HEADER_DEAD_REASON, HEADER_FORWARDED, HEADER_ORIGINAL_KEY, Topology
from worker.amqp.connection import connect_once


def _reason(headers: dict[str, Any]) -> tuple[str, str]:
    if HEADER_DEAD_REASON in headers:
        return str(headers[HEADER_DEAD_REASON]), str(headers.get(HEADER_DEAD_DETAIL, ""))
    deaths = headers.get("x-death") or []
    if deaths and isinstance(deaths, list) and isinstance(deaths[0], dict):
        return str(deaths[0].get("reason", "broker")), f"dead-lettered by the broker from {deaths[0].get('queue')}"
    return "unknown", ""


async def drain_dead_letters(url: str, names: Topology, *, count: int, replay: bool) -> list[dict[str, Any]]:
    """Look at up to `count` dead letters; with `replay`, re-publish each under its original key and
    remove it, otherwise leave them all on the queue."""
    found: list[dict[str, Any]] = []
    connection = await connect_once(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.get_queue(names.dead_letter_queue, ensure=True)
        inbound = await channel.get_exchange(names.inbound_exchange, ensure=True)
        held = []
        for _ in range(count):
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            headers = dict(message.headers or {})
            reason, detail = _reason(headers)
            key = str(headers.get(HEADER_ORIGINAL_KEY) or message.routing_key or "")
            found.append({"messageId": message.message_id, "reason": reason, "detail": detail, "routingKey": key})
            if replay:
                for header in (HEADER_DEAD_REASON, HEADER_DEAD_DETAIL, HEADER_FORWARDED, "x-death"):
                    headers.pop(header, None)
                copy = aio_pika.Message(
                    message.body,
                    headers=headers,
                    content_type=message.content_type,
                    message_id=message.message_id,
                    type=message.type,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                )
                await inbound.publish(copy, routing_key=key)
                await message.ack()
            else:
                held.append(message)
        for message in held:  # looked at, not taken: back to the queue
            await message.nack(requeue=True)
    return found
