"""The load generator's own AMQP connection: frames encoded ahead of time, replies read raw.

The benchmark shares the machine's two cores with the broker and the consumers it measures, so
whatever it spends per message is taken from them, and publishing and reading replies through
aiormq cost a large share of a small machine's budget. A gateway's publisher runs elsewhere in
production. This client does the least the protocol allows: every publish is one write of frames
marshalled before the clock starts, and the tap (no-ack) hands each reply's body over without
decoding its method or its properties. The handshake and the few synchronous methods go through
pamqp; only the frames that carry messages are read by hand.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import unquote, urlparse

from pamqp import body, commands, frame, header
from pamqp.base import Frame
from pamqp.constants import FRAME_END

CHANNEL = 1
_FRAME_HEADER = struct.Struct(">BHI")  # type, channel, payload size
_METHOD, _HEADER, _BODY, _HEARTBEAT = 1, 2, 3, 8
_DELIVER = struct.pack(">HH", 60, 60)  # Basic.Deliver's class and method ids
_BODY_SIZE = struct.Struct(">Q")  # in a content header, after class id and weight

OnBody = Callable[[bytes], None]
F = TypeVar("F", bound=Frame)


def publish_frames(exchange: str, routing_key: str, payload: bytes, properties: commands.Basic.Properties) -> bytes:
    """One message's publish, as the bytes to write (the body fits one frame: events are small)."""
    content = header.ContentHeader(body_size=len(payload), properties=properties)
    parts = (commands.Basic.Publish(exchange=exchange, routing_key=routing_key), content, body.ContentBody(payload))
    return b"".join(frame.marshal(part, CHANNEL) for part in parts)


class WireClient(asyncio.Protocol):
    """One connection with one channel: publish pre-encoded frames, consume one queue without acks."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._replies: asyncio.Queue[Frame] = asyncio.Queue()
        self._on_body: OnBody | None = None
        self._delivering = False  # between a Basic.Deliver and the end of its body
        self._body_left = 0
        self._body_parts: list[bytes] = []
        self.error: str | None = None  # why the broker closed the channel or the connection

    @classmethod
    async def connect(cls, url: str) -> WireClient:
        parsed = urlparse(url)
        if parsed.scheme != "amqp":
            raise ValueError(f"the benchmark's publisher speaks plain amqp:// only, not {parsed.scheme}://")
        loop = asyncio.get_running_loop()
        _, client = await loop.create_connection(cls, parsed.hostname or "localhost", parsed.port or 5672)
        try:
            user, password = unquote(parsed.username or "guest"), unquote(parsed.password or "guest")
            await client._handshake(user, password, parsed.path)
        except BaseException:
            if client._transport is not None:
                client._transport.close()
            raise
        return client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.error = self.error or f"the benchmark's AMQP connection was lost: {exc}"
        self._replies.put_nowait(commands.Connection.Close(reply_text=f"connection lost: {exc}"))

    async def _handshake(self, user: str, password: str, path: str) -> None:
        self._write(frame.marshal(header.ProtocolHeader(), 0))
        await self._expect(commands.Connection.Start)
        self._send(commands.Connection.StartOk(mechanism="PLAIN", response=f"\0{user}\0{password}"), 0)
        tune = await self._expect(commands.Connection.Tune)
        # No heartbeats: the benchmark's connection lives for one run on a local broker.
        self._send(commands.Connection.TuneOk(channel_max=tune.channel_max, frame_max=tune.frame_max), 0)
        self._send(commands.Connection.Open(virtual_host=unquote(path[1:]) if len(path) > 1 else "/"), 0)
        await self._expect(commands.Connection.OpenOk)
        self._send(commands.Channel.Open(), CHANNEL)
        await self._expect(commands.Channel.OpenOk)

    async def tap(self, exchange: str, on_body: OnBody) -> None:
        """Bind a queue of this connection's own to `exchange` (all keys) and hand over every
        message's body as it arrives, unacknowledged."""
        self._send(commands.Queue.Declare(exclusive=True, auto_delete=True), CHANNEL)
        queue = (await self._expect(commands.Queue.DeclareOk)).queue or ""
        self._send(commands.Queue.Bind(queue=queue, exchange=exchange, routing_key="#"), CHANNEL)
        await self._expect(commands.Queue.BindOk)
        self._on_body = on_body
        self._send(commands.Basic.Consume(queue=queue, no_ack=True), CHANNEL)
        await self._expect(commands.Basic.ConsumeOk)

    def publish(self, frames: bytes) -> None:
        """Write one message's pre-encoded frames (publish_frames); no confirm is asked for."""
        self._write(frames)

    async def close(self) -> None:
        if self._transport is None or self._transport.is_closing():
            return
        try:
            if self.error is None:
                self._send(commands.Connection.Close(reply_code=200, reply_text="done", class_id=0, method_id=0), 0)
                async with asyncio.timeout(5):
                    await self._expect(commands.Connection.CloseOk)
        finally:
            self._transport.close()

    def _send(self, method: Frame, channel: int) -> None:
        self._write(frame.marshal(method, channel))

    def _write(self, data: bytes) -> None:
        if self.error is not None or self._transport is None or self._transport.is_closing():
            raise ConnectionError(self.error or "the benchmark's AMQP connection is closed")
        self._transport.write(data)

    async def _expect(self, kind: type[F]) -> F:
        got = await self._replies.get()
        if not isinstance(got, kind):
            raise ConnectionError(f"expected {kind.__name__} from the broker, got {got!r}")
        return got

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        while len(buffer) - start >= 8:
            kind, _, size = _FRAME_HEADER.unpack_from(buffer, start)
            end = start + 7 + size
            if len(buffer) <= end:
                break
            if buffer[end] != FRAME_END:
                raise ConnectionError("malformed frame from the broker")
            self._frame(kind, bytes(buffer[start + 7 : end]), start, end + 1)
            start = end + 1
        del buffer[:start]

    def _frame(self, kind: int, payload: bytes, start: int, stop: int) -> None:
        """A whole frame. A delivery's three frames are read by hand; anything else through pamqp."""
        if kind == _METHOD and payload[:4] == _DELIVER:
            self._delivering = True
        elif kind == _HEADER and self._delivering:
            self._body_left = _BODY_SIZE.unpack_from(payload, 4)[0]
            self._body_parts = []
            self._finish_body()  # an empty body has no body frame
        elif kind == _BODY and self._delivering:
            self._body_parts.append(payload)
            self._body_left -= len(payload)
            self._finish_body()
        elif kind != _HEARTBEAT:
            _, _, method = frame.unmarshal(bytes(self._buffer[start:stop]))
            if isinstance(method, commands.Channel.Close | commands.Connection.Close):
                self.error = f"the broker closed the benchmark's {method.name}: {method.reply_text}"
            self._replies.put_nowait(method)  # type: ignore[arg-type]  # a method frame

    def _finish_body(self) -> None:
        if self._body_left > 0:
            return
        self._delivering = False
        if self._on_body is not None:
            self._on_body(b"".join(self._body_parts))
