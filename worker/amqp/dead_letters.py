"""Inspecting and replaying the dead-letter queue (`sessions dead-letters`).

A replayed event that is still bad is dead-lettered again, to the back of the same queue. So one
replay run moves each dead letter at most once: it takes at most as many messages as the queue
held when the run began, and a message it already replayed in this run (met again because the
worker was quick to refuse it) is left on the queue and counted as skipped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from schemas.topology import HEADER_DEAD_DETAIL, HEADER_DEAD_REASON, HEADER_FORWARDED, HEADER_ORIGINAL_KEY, Topology
from worker.amqp.connection import connect_once


@dataclass
class DeadLetterReport:
    """What one run found: every message it looked at, and how many it replayed or skipped."""

    items: list[dict[str, Any]] = field(default_factory=list)
    replayed: int = 0
    skipped: int = 0
    depth_at_start: int = 0


def _reason(headers: dict[str, Any]) -> tuple[str, str]:
    if HEADER_DEAD_REASON in headers:
        return str(headers[HEADER_DEAD_REASON]), str(headers.get(HEADER_DEAD_DETAIL, ""))
    deaths = headers.get("x-death") or []
    if deaths and isinstance(deaths, list) and isinstance(deaths[0], dict):
        return str(deaths[0].get("reason", "broker")), f"dead-lettered by the broker from {deaths[0].get('queue')}"
    return "unknown", ""


def _identity(message: AbstractIncomingMessage) -> str:
    """The same dead letter met twice in one run: its message id, or its body without one."""
    return message.message_id or "sha256:" + hashlib.sha256(message.body).hexdigest()


def _replay_copy(message: AbstractIncomingMessage, headers: dict[str, Any]) -> aio_pika.Message:
    for header in (HEADER_DEAD_REASON, HEADER_DEAD_DETAIL, HEADER_FORWARDED, "x-death"):
        headers.pop(header, None)
    return aio_pika.Message(
        message.body,
        headers=headers,
        content_type=message.content_type,
        message_id=message.message_id,
        type=message.type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )


async def drain_dead_letters(url: str, names: Topology, *, count: int, replay: bool) -> DeadLetterReport:
    """Look at up to `count` dead letters (never more than the queue held at the start); with
    `replay`, re-publish each under its original key and remove it, at most once per run.
    Whatever is looked at and not replayed goes back to the queue."""
    report = DeadLetterReport()
    connection = await connect_once(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.get_queue(names.dead_letter_queue, ensure=True)
        inbound = await channel.get_exchange(names.inbound_exchange, ensure=True)
        declared = queue.declaration_result
        report.depth_at_start = (declared.message_count or 0) if declared is not None else count
        replayed: set[str] = set()
        held = []
        for _ in range(min(count, report.depth_at_start)):
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            headers = dict(message.headers or {})
            reason, detail = _reason(headers)
            key = str(headers.get(HEADER_ORIGINAL_KEY) or message.routing_key or "")
            item = {"messageId": message.message_id, "reason": reason, "detail": detail, "routingKey": key}
            report.items.append(item)
            if replay and _identity(message) not in replayed:
                await inbound.publish(_replay_copy(message, headers), routing_key=key)
                await message.ack()
                replayed.add(_identity(message))
                report.replayed += 1
                item["action"] = "replayed"
                continue
            if replay:
                report.skipped += 1  # dead-lettered again after this run replayed it: once is enough
                item["action"] = "skipped"
            held.append(message)
        for message in held:  # looked at, not taken: back to the queue
            await message.nack(requeue=True)
    return report
