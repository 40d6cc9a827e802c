"""AMQP_URL as a list of cluster nodes: parsing, and a connection that moves on to the next node."""

from __future__ import annotations

import asyncio

import pytest
from yarl import URL

from tests.support.processes import free_port
from worker.amqp.connection import FailoverConnection, broker_urls, connect


def test_one_url_or_a_comma_separated_list() -> None:
    assert broker_urls("amqp://a:5672/") == [URL("amqp://a:5672/")]
    assert broker_urls(" amqp://a:5672/ , amqp://b:5673/,") == [URL("amqp://a:5672/"), URL("amqp://b:5673/")]
    with pytest.raises(ValueError, match="names no broker"):
        broker_urls(" , ")


async def test_each_lost_connection_or_failed_attempt_moves_to_the_next_node() -> None:
    urls = [URL("amqp://guest:guest@127.0.0.1:1/"), URL("amqp://guest:guest@127.0.0.1:2/")]
    connection = FailoverConnection(urls)
    seen = [connection.url]
    for _ in range(3):
        closing: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        closing.set_exception(ConnectionError("node stopped"))
        await connection._on_connection_close(closing)
        seen.append(connection.url)
    assert seen == [urls[0], urls[1], urls[0], urls[1]]
    await connection.close()


async def test_a_client_that_must_not_wait_fails_after_one_round_of_dead_nodes() -> None:
    dead = ",".join(f"amqp://guest:guest@127.0.0.1:{free_port()}/" for _ in range(2))
    async with asyncio.timeout(10):
        with pytest.raises(OSError):
            await connect(dead, wait=False)
