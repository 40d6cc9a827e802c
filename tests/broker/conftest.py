from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.backends import WorkerStore
from tests.support.broker import BrokerHarness, isolated_topology, require_broker
from worker.engine.clock import ManualClock
from worker.engine.tokens import TiktokenCounter


@pytest.fixture(scope="session")
def amqp_url() -> str:
    return require_broker()


@pytest.fixture
async def harness(
    amqp_url: str, worker_store: WorkerStore, token_counter: TiktokenCounter
) -> AsyncIterator[BrokerHarness]:
    async with isolated_topology(amqp_url) as names:
        opened = await BrokerHarness(amqp_url, names, worker_store, token_counter).open()
        try:
            yield opened
        finally:
            await opened.close()


@pytest.fixture
async def clocked_harness(
    amqp_url: str, worker_store: WorkerStore, token_counter: TiktokenCounter, clock: ManualClock
) -> AsyncIterator[BrokerHarness]:
    """A harness whose workers (and schedulers) read the test's ManualClock."""
    async with isolated_topology(amqp_url) as names:
        opened = await BrokerHarness(amqp_url, names, worker_store, token_counter, clock=clock).open()
        try:
            yield opened
        finally:
            await opened.close()
