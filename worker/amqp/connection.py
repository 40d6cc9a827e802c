"""Connections to RabbitMQ at one address or several (the nodes of a cluster).

`AMQP_URL` may list several URLs, comma-separated. A connection starts at the first one that
answers; when it is lost (its node stopped, say), aio-pika's robust reconnect moves on to the next
URL in turn and restores channels, queues, bindings and consumers there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import aio_pika
import aiormq
from aio_pika import RobustConnection
from aio_pika.abc import AbstractConnection, AbstractRobustConnection
from yarl import URL

log = logging.getLogger(__name__)
RECONNECT_INTERVAL = 1.0
MAX_BACKOFF = 15.0


def broker_urls(value: str) -> list[URL]:
    """The URLs of an `AMQP_URL` value: one URL, or several separated by commas."""
    urls = [URL(part.strip()) for part in value.split(",") if part.strip()]
    if not urls:
        raise ValueError("AMQP_URL names no broker")
    return urls


def _starting_at(urls: Sequence[URL], first: int) -> list[URL]:
    first %= len(urls)
    return [*urls[first:], *urls[:first]]


class FailoverConnection(RobustConnection):
    """A robust connection that tries the next URL after every lost connection or failed attempt."""

    def __init__(self, urls: Sequence[URL], **kwargs: Any) -> None:
        super().__init__(urls[0], **kwargs)
        self._urls = tuple(urls)
        self._current = 0

    async def _on_connection_close(self, closing: asyncio.Future[Any]) -> None:
        # aio-pika calls this when an open connection is lost and when a connection attempt fails;
        # its reconnect loop then dials `self.url`, which from here on is the next node.
        self._current = (self._current + 1) % len(self._urls)
        self.url = self._urls[self._current]
        await super()._on_connection_close(closing)


def use_write_buffer(frames: int) -> None:
    """Let every broker connection this process opens from now on (reconnects too) queue up to
    `frames` outgoing frames before a publish or an ack waits.

    aiormq bounds a connection's outgoing frames by its class attribute FRAME_BUFFER_SIZE (10),
    read as each connection opens; aio-pika offers no way to pass it per connection, so it is set
    process-wide. aiormq holds a channel's lock while it queues a publish: with room for 10 frames
    the in-flight publishes wait on that lock and frames leave in trickles. Measurements:
    docs/benchmarks/history.md.
    """
    if frames < 1:
        raise ValueError(f"the write buffer must hold at least one frame, not {frames}")
    aiormq.Connection.FRAME_BUFFER_SIZE = frames


async def connect(url: str, *, wait: bool = True) -> AbstractRobustConnection:
    """A robust connection to the first URL of `url` that answers; until one does, try them in
    turn, backing off after each full round (`wait=False`: raise after the first round instead).
    Afterwards it reconnects by itself."""
    urls = broker_urls(url)
    delay, attempt = 0.5, 0
    while True:
        connection = FailoverConnection(
            _starting_at(urls, attempt), reconnect_interval=RECONNECT_INTERVAL, fail_fast=True
        )
        attempt += 1
        try:
            await connection.connect()
        except (OSError, aio_pika.exceptions.AMQPConnectionError) as exc:
            await connection.close()
            if attempt % len(urls):
                continue  # the next node may answer
            if not wait:
                raise
            log.warning("broker unreachable (%s); retrying in %.1fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF)
        else:
            return connection


async def connect_once(url: str) -> AbstractConnection:
    """A plain connection (for one-shot commands) to the first URL of `url` that answers."""
    urls = broker_urls(url)
    for candidate in urls[:-1]:
        try:
            return await aio_pika.connect(candidate)
        except (OSError, aio_pika.exceptions.AMQPConnectionError) as exc:
            log.info("broker %s unreachable (%s); trying the next one", candidate.with_password(None), exc)
    return await aio_pika.connect(urls[-1])


async def close_within(connection: AbstractConnection, seconds: float) -> None:
    """Close the connection, waiting at most `seconds` for the broker's answer: one that blocks
    publishers (a memory or disk alarm) or is gone never answers, and a stop must end."""
    try:
        async with asyncio.timeout(seconds):
            await connection.close()
    except TimeoutError:
        log.warning("the broker did not answer closing the connection within %.1fs; dropping it", seconds)
