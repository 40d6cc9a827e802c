"""Reading what the workers publish: replies (for `sessions replies`), turns, dead letters."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue


async def bound_queue(channel: AbstractChannel, exchange: str, routing_key: str = "#") -> AbstractQueue:
    """A private, auto-deleted queue bound to `exchange`: sees what is published from now on."""
    queue = await channel.declare_queue("", exclusive=True, auto_delete=True)
    await queue.bind(await channel.get_exchange(exchange, ensure=True), routing_key=routing_key)
    return queue


async def messages(
    queue: AbstractQueue, *, count: int | None, idle_seconds: float | None
) -> AsyncIterator[AbstractIncomingMessage]:
    """Yield (and ack) up to `count` messages, stopping after `idle_seconds` without one."""
    seen = 0
    async with queue.iterator() as stream:
        while count is None or seen < count:
            try:
                async with asyncio.timeout(idle_seconds):
                    message = await anext(stream)
            except (TimeoutError, StopAsyncIteration):
                return
            with contextlib.suppress(Exception):
                await message.ack()
            seen += 1
            yield message
