"""The benchmark's raw AMQP client: its pre-encoded publishes and its hand-read deliveries."""

from __future__ import annotations

import asyncio

import pytest
from pamqp import body, commands, frame, header

from benchmarks.wire import CHANNEL, WireClient, publish_frames


def _delivery(payload: bytes, frame_max: int = 1 << 17) -> bytes:
    """A delivery's frames as the broker sends them, the body split into frames of `frame_max`."""
    properties = commands.Basic.Properties(message_id="r1", headers={"x": 1}, content_type="application/json")
    parts: list[object] = [
        commands.Basic.Deliver(consumer_tag="c", delivery_tag=1, exchange="turns", routing_key="main"),
        header.ContentHeader(body_size=len(payload), properties=properties),
    ]
    parts += [body.ContentBody(payload[at : at + frame_max]) for at in range(0, len(payload), frame_max)]
    return b"".join(frame.marshal(part, CHANNEL) for part in parts)  # type: ignore[arg-type]


def _client() -> tuple[WireClient, list[bytes]]:
    bodies: list[bytes] = []
    client = WireClient()
    client._on_body = bodies.append  # what tap() sets once the broker has confirmed the consumer
    return client, bodies


def test_publish_frames_read_back_as_one_publish() -> None:
    properties = commands.Basic.Properties(message_id="e1", delivery_mode=2)
    encoded = publish_frames("inbound", "slot-1", b'{"eventId":"e1"}', properties)
    read: list[object] = []
    while encoded:
        used, channel, part = frame.unmarshal(encoded)
        assert channel == CHANNEL
        read.append(part)
        encoded = encoded[used:]
    publish, content, payload = read
    assert isinstance(publish, commands.Basic.Publish)
    assert (publish.exchange, publish.routing_key) == ("inbound", "slot-1")
    assert isinstance(content, header.ContentHeader) and content.properties.message_id == "e1"
    assert isinstance(payload, body.ContentBody) and payload.value == b'{"eventId":"e1"}'


def test_deliveries_split_anywhere_across_reads_give_whole_bodies() -> None:
    client, bodies = _client()
    stream = _delivery(b"first") + _delivery(b"second, in three body frames", frame_max=10) + _delivery(b"")
    for at in range(0, len(stream), 7):  # every frame boundary falls inside some read
        client.data_received(stream[at : at + 7])
    assert bodies == [b"first", b"second, in three body frames", b""]
    assert not client._buffer


async def test_other_methods_go_to_whoever_waits_for_them_and_a_close_is_kept() -> None:
    client, bodies = _client()
    client.data_received(frame.marshal(commands.Basic.ConsumeOk(consumer_tag="c"), CHANNEL))
    assert isinstance(await asyncio.wait_for(client._expect(commands.Basic.ConsumeOk), 1), commands.Basic.ConsumeOk)
    close = commands.Channel.Close(reply_code=404, reply_text="NOT_FOUND - no exchange 'x'", class_id=60, method_id=40)
    client.data_received(frame.marshal(close, CHANNEL))
    assert client.error is not None and "NOT_FOUND" in client.error
    with pytest.raises(ConnectionError, match="NOT_FOUND"):
        client.publish(b"")
    assert bodies == []


def test_a_corrupt_frame_end_is_an_error() -> None:
    client, _ = _client()
    data = bytearray(_delivery(b"x"))
    data[-1] = 0
    with pytest.raises(ConnectionError, match="malformed"):
        client.data_received(bytes(data))


async def test_a_lost_connection_is_kept_as_the_error() -> None:
    client, _ = _client()
    client.connection_lost(None)
    assert client.error is not None and "lost" in client.error
    with pytest.raises(ConnectionError, match="lost"):
        client.publish(b"")


async def test_only_plain_amqp_urls_are_taken() -> None:
    with pytest.raises(ValueError, match="amqp://"):
        await WireClient.connect("amqps://guest:guest@127.0.0.1:5671/")
