"""A tiny HTTP server for operators: /metrics (Prometheus), /healthz (alive), /readyz (serving).

Plain asyncio streams: three fixed GET routes need no web framework.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from worker.errors import StartupError

log = logging.getLogger(__name__)
Readiness = Callable[[], Awaitable[tuple[bool, str]]]
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


class OpsServer:
    def __init__(self, registries: list[CollectorRegistry], readiness: list[Readiness], host: str, port: int) -> None:
        self._registries = registries
        self._readiness = readiness
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(self._serve, self._host, self._port)
        except OSError as exc:
            raise StartupError(
                f"cannot serve /metrics on {self._host}:{self._port} ({exc.strerror or exc}):"
                " set SESSIONS_METRICS_PORT to a free port (0 picks one)"
            ) from exc
        log.info("metrics and health on http://%s:%d/", self._host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                request = await reader.readline()
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass  # headers are not needed
            status, content_type, body = await self._route(request.decode("latin-1").split())
        except (TimeoutError, ConnectionError, UnicodeDecodeError):
            writer.close()
            return
        head = f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {content_type}\r\n"
        head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        with contextlib.suppress(ConnectionError):
            writer.write(head.encode() + body)
            await writer.drain()
        writer.close()

    async def _route(self, request: list[str]) -> tuple[int, str, bytes]:
        if len(request) < 2:
            return 404, "text/plain", b"bad request\n"
        method, path = request[0], request[1].split("?", 1)[0]
        if method != "GET":
            return 405, "text/plain", b"GET only\n"
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, b"".join(generate_latest(r) for r in self._registries)
        if path == "/healthz":
            return 200, "text/plain", b"ok\n"
        if path == "/readyz":
            checks = [await check() for check in self._readiness]
            failing = [reason for ready, reason in checks if not ready]
            if failing:
                return 503, "text/plain", ("not ready: " + "; ".join(failing) + "\n").encode()
            return 200, "text/plain", b"ready\n"
        return 404, "text/plain", b"not found\n"
