"""A worker's broker connections queue as many outgoing frames as its setting allows, reconnects too."""

from __future__ import annotations

import asyncio

import aiormq
import pytest
from aio_pika.abc import AbstractRobustConnection

from tests.support.broker import BrokerHarness
from worker.amqp.connection import connect, use_write_buffer
from worker.config import Advanced

pytestmark = pytest.mark.broker


def _queued_frames_allowed(connection: AbstractRobustConnection) -> int:
    transport = getattr(connection, "transport", None)
    assert transport is not None, "connected"
    maxsize: int = transport.connection.write_queue.maxsize
    return maxsize


@pytest.fixture(autouse=True)
def _restore_aiormq_default(monkeypatch: pytest.MonkeyPatch) -> None:
    # use_write_buffer() is process-wide: undo it after each test.
    monkeypatch.setattr(aiormq.Connection, "FRAME_BUFFER_SIZE", aiormq.Connection.FRAME_BUFFER_SIZE)


async def test_a_connection_and_its_reconnects_take_the_write_buffer(amqp_url: str) -> None:
    use_write_buffer(333)
    connection = await connect(amqp_url)
    async with connection:
        assert _queued_frames_allowed(connection) == 333
        first = getattr(connection, "transport", None)
        assert first is not None
        reconnected = asyncio.Event()
        connection.reconnect_callbacks.add(lambda *_: reconnected.set())
        await first.connection.close(ConnectionError("dropped by the test"))  # as a lost socket would
        async with asyncio.timeout(30):
            await reconnected.wait()
        assert getattr(connection, "transport", None) is not first
        assert _queued_frames_allowed(connection) == 333


async def test_the_worker_opens_its_connections_with_its_setting(harness: BrokerHarness) -> None:
    await harness.start_worker(advanced=Advanced(write_buffer_frames=4321))
    assert aiormq.Connection.FRAME_BUFFER_SIZE == 4321
    connection = await connect(harness.url)
    async with connection:
        assert _queued_frames_allowed(connection) == 4321


def test_a_write_buffer_needs_room_for_a_frame() -> None:
    with pytest.raises(ValueError, match="at least one frame"):
        use_write_buffer(0)
