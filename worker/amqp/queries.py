"""Queries over AMQP request/reply: history, context window, export, list, show.

Every worker answers (competing consumers on one queue): queries only read, so they need no shard
ownership or ordering. Every request is acked once answered, bad ones included; a malformed query
gets ok=false with the reason, never a redelivery loop or a dead worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aio_pika import Message
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage, AbstractQueue
from pydantic import ValidationError

from schemas.base import describe_errors
from schemas.queries import QueryFormat, QueryRequest, QueryResponse
from schemas.session import SessionStatus
from schemas.settings import ContextStrategy
from schemas.topology import Topology
from worker.amqp.publisher import Publisher
from worker.engine.outcome import Outcome
from worker.errors import InvalidArgument, SessionsError
from worker.sessions.context import ContextWindow, summarize_request
from worker.sessions.manager import SessionManager

log = logging.getLogger(__name__)
DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"
MAX_REQUEST_BYTES = 64 * 1024
DEFAULT_LIMIT = 50
# An uncovered range is worth a summarizer call only once it is this long; until then the
# window's digest stands in. Without it every turn of a long chat would ask for a sliver.
MIN_SUMMARIZE_ENTRIES = 16


def failure(code: str, error: str) -> QueryResponse:
    return QueryResponse(ok=False, error=error, code=code)


def _session_id(request: QueryRequest) -> str:
    if request.session_id is None:  # QueryRequest checks it already; this keeps the types honest
        raise InvalidArgument(f"a {request.query} query needs sessionId")
    return request.session_id


def parse_request(body: bytes) -> QueryRequest | QueryResponse:
    """The request, or the ok=false response that explains why it is not one."""
    if len(body) > MAX_REQUEST_BYTES:
        return failure("oversize", f"query of {len(body)} bytes is over the {MAX_REQUEST_BYTES}-byte limit")
    try:
        return QueryRequest.model_validate_json(body)
    except ValidationError as exc:
        problems = describe_errors(exc, where="request")
        return failure("invalid-request", f"invalid query: {problems}"[:1000])


class QueryResponder:
    def __init__(
        self,
        channel: AbstractChannel,
        manager: SessionManager,
        publisher: Publisher,
        topology: Topology,
        *,
        prefetch: int = 32,
        min_summarize_entries: int = MIN_SUMMARIZE_ENTRIES,
    ) -> None:
        self._channel = channel
        self._manager = manager
        self._publisher = publisher
        self._topology = topology
        self._prefetch = prefetch
        self._min_summarize = min_summarize_entries
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None
        self._running = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._queries: dict[str, Callable[[QueryRequest], Awaitable[Any]]] = {
            "history": self._history,
            "context": self._context,
            "export": self._export,
            "list": self._list,
            "show": self._show,
        }

    async def start(self) -> None:
        await self._channel.set_qos(prefetch_count=self._prefetch)
        self._queue = await self._channel.get_queue(self._topology.query_queue, ensure=True)
        self._tag = await self._queue.consume(self._on_message)

    async def stop(self, grace: float) -> None:
        """Stop taking queries, answer the ones in flight, close the channel (unacked ones requeue)."""
        if self._queue is not None and self._tag is not None and not self._channel.is_closed:
            with contextlib.suppress(Exception):
                await self._queue.cancel(self._tag)
        try:
            async with asyncio.timeout(grace):
                await self._idle.wait()
        except TimeoutError:
            log.warning("%d queries still running at stop; they will be redelivered", self._running)
        if not self._channel.is_closed:
            await self._channel.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self._running += 1
        self._idle.clear()
        try:
            response = await self.answer(message.body)
            await self._reply(message, response)
        except Exception:
            log.exception("could not answer query %s", message.correlation_id)
        finally:
            with contextlib.suppress(Exception):
                await message.ack()
            self._running -= 1
            if self._running == 0:
                self._idle.set()

    async def _reply(self, message: AbstractIncomingMessage, response: QueryResponse) -> None:
        if not message.reply_to:
            log.warning("query %s has no reply_to; nobody to answer", message.correlation_id)
            return
        body = response.model_dump_json(by_alias=True, exclude_none=True).encode()
        reply = Message(body, content_type="application/json", correlation_id=message.correlation_id)
        await self._channel.default_exchange.publish(reply, routing_key=message.reply_to)

    async def answer(self, body: bytes) -> QueryResponse:
        request = parse_request(body)
        if isinstance(request, QueryResponse):
            return request
        try:
            return QueryResponse(ok=True, result=await self._queries[request.query](request))
        except SessionsError as exc:
            return failure(exc.code, str(exc))
        except Exception:
            log.exception("query %s failed", request.query)
            return failure("internal", f"the {request.query} query failed inside the worker; see its log")

    # Queries ----------------------------------------------------------------------------------
    async def _history(self, request: QueryRequest) -> Any:
        session_id, limit = _session_id(request), request.limit or DEFAULT_LIMIT
        if request.format == "markdown" or request.format == "text":
            return await self._manager.get_history(session_id, limit=limit, format=request.format)
        entries = await self._manager.get_history(session_id, limit=limit)
        return [entry.to_wire() for entry in entries]

    async def _context(self, request: QueryRequest) -> Any:
        session_id = _session_id(request)
        window = await self._manager.get_context_history(
            session_id, max_tokens=request.max_tokens, strategy=request.strategy
        )
        if window.uncovered is not None and window.uncovered[1] - window.uncovered[0] + 1 >= self._min_summarize:
            await self._request_summary(session_id, window)
        return window.to_wire()

    async def _request_summary(self, session_id: str, window: ContextWindow) -> None:
        # The window is the answer; a lost summarize request only delays a summary, so log it.
        try:
            wanted = summarize_request(await self._manager.get_session(session_id), window)
            if wanted is not None:
                await self._publisher.publish_outcome(Outcome(summarize=(wanted,)))
        except Exception:
            log.exception("could not publish the summarize request for session %s", session_id)

    async def _export(self, request: QueryRequest) -> Any:
        fmt = request.format
        return await self._manager.export(
            _session_id(request),
            format="json" if fmt == "json" else "jsonl" if fmt == "jsonl" else "markdown",
            include_metadata=request.include_metadata,
        )

    async def _list(self, request: QueryRequest) -> Any:
        page = await self._manager.list_sessions(
            agent_id=request.agent_id,
            status=request.status,
            active_within_minutes=request.active_within_minutes,
            limit=request.limit or DEFAULT_LIMIT,
            cursor=request.cursor,
        )
        return page.to_wire()

    async def _show(self, request: QueryRequest) -> Any:
        return (await self._manager.get_session(_session_id(request))).to_wire()


class QueryClient:
    """Asks the workers over RabbitMQ direct reply-to: no reply queue to declare or clean up."""

    def __init__(self, channel: AbstractChannel, names: Topology, *, default_timeout: float = 10) -> None:
        self._channel = channel
        self._names = names
        self.default_timeout = default_timeout  # for the convenience methods
        self._pending: dict[str, asyncio.Future[QueryResponse]] = {}

    @classmethod
    async def open(
        cls, connection: AbstractConnection, names: Topology | None = None, *, default_timeout: float = 10
    ) -> QueryClient:
        # Direct reply-to: consume the pseudo-queue (no-ack) on the channel that publishes.
        client = cls(await connection.channel(), names or Topology(), default_timeout=default_timeout)
        replies = await client._channel.get_queue(DIRECT_REPLY_TO, ensure=False)
        await replies.consume(client._on_reply, no_ack=True)
        return client

    async def close(self) -> None:
        for future in self._pending.values():
            future.cancel()
        await self._channel.close()

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        future = self._pending.get(message.correlation_id or "")
        if future is None or future.done():
            return  # a late answer to a call that timed out
        try:
            future.set_result(QueryResponse.model_validate_json(message.body))
        except ValidationError as exc:
            future.set_exception(ValueError(f"the worker's answer is not a QueryResponse: {exc}"))

    # The timeout is not only a wait: it also becomes the request's expiration on the broker.
    async def call(self, request: QueryRequest, timeout: float = 10) -> QueryResponse:  # noqa: ASYNC109
        correlation_id = uuid.uuid4().hex
        future: asyncio.Future[QueryResponse] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        message = Message(
            request.model_dump_json(by_alias=True, exclude_none=True).encode(),
            content_type="application/json",
            correlation_id=correlation_id,
            reply_to=DIRECT_REPLY_TO,
            expiration=timeout,  # nobody waits for the answer after that
        )
        try:
            await self._channel.default_exchange.publish(message, routing_key=self._names.query_queue)
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            raise TimeoutError(f"no worker answered the {request.query} query within {timeout:g}s") from None
        finally:
            self._pending.pop(correlation_id, None)

    async def history(
        self, session_id: str, *, limit: int = DEFAULT_LIMIT, format: QueryFormat = "messages"
    ) -> QueryResponse:
        return await self.call(
            QueryRequest(query="history", session_id=session_id, limit=limit, format=format), self.default_timeout
        )

    async def context(
        self,
        session_id: str,
        *,
        max_tokens: int | None = None,
        strategy: ContextStrategy | None = None,
    ) -> QueryResponse:
        request = QueryRequest(query="context", session_id=session_id, max_tokens=max_tokens, strategy=strategy)
        return await self.call(request, self.default_timeout)

    async def export(
        self, session_id: str, *, format: QueryFormat = "markdown", include_metadata: bool = False
    ) -> QueryResponse:
        request = QueryRequest(query="export", session_id=session_id, format=format, include_metadata=include_metadata)
        return await self.call(request, self.default_timeout)

    async def list_sessions(
        self,
        *,
        agent_id: str | None = None,
        status: SessionStatus | None = None,
        active_within_minutes: int | None = None,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> QueryResponse:
        request = QueryRequest(
            query="list",
            agent_id=agent_id,
            status=status,
            active_within_minutes=active_within_minutes,
            limit=limit,
            cursor=cursor,
        )
        return await self.call(request, self.default_timeout)

    async def show(self, session_id: str) -> QueryResponse:
        return await self.call(QueryRequest(query="show", session_id=session_id), self.default_timeout)
