"""AMQP_URL listing several nodes: a node that is down is skipped."""

from __future__ import annotations

import pytest
from yarl import URL

from tests.support.processes import free_port
from worker.amqp.connection import FailoverConnection, connect, connect_once

pytestmark = pytest.mark.broker


async def test_connections_skip_a_node_that_is_down(amqp_url: str) -> None:
    urls = f"amqp://guest:guest@127.0.0.1:{free_port()}/,{amqp_url}"
    robust = await connect(urls, wait=False)
    async with robust:
        assert isinstance(robust, FailoverConnection) and robust.url == URL(amqp_url)
        await (await robust.channel()).close()
    once = await connect_once(urls)
    async with once:
        await (await once.channel()).close()
