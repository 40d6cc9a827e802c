"""Queries over AMQP request/reply: history, context, export, list, show, bad requests, summarize requests."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage

from schemas.events import SummaryProduced
from schemas.queries import QueryResponse
from tests.support.broker import BrokerHarness, Tap
from worker.amqp.queries import DIRECT_REPLY_TO, QueryClient
from worker.amqp.taps import bound_queue
from worker.engine.outcome import derived_id

pytestmark = pytest.mark.broker


@asynccontextmanager
async def query_client(harness: BrokerHarness) -> AsyncIterator[QueryClient]:
    connection = await aio_pika.connect_robust(harness.url)
    try:
        yield await QueryClient.open(connection, harness.names)
    finally:
        await connection.close()


async def raw_query(harness: BrokerHarness, body: bytes) -> dict[str, object]:
    """Send bytes the QueryClient would refuse to build, and read the worker's answer."""
    connection = await aio_pika.connect(harness.url)
    async with connection:
        channel = await connection.channel()
        answer: asyncio.Future[AbstractIncomingMessage] = asyncio.get_running_loop().create_future()

        async def on_reply(message: AbstractIncomingMessage) -> None:
            answer.set_result(message)

        replies = await channel.get_queue(DIRECT_REPLY_TO, ensure=False)
        await replies.consume(on_reply, no_ack=True)
        request = aio_pika.Message(body, correlation_id="raw-1", reply_to=DIRECT_REPLY_TO)
        await channel.default_exchange.publish(request, routing_key=harness.names.query_queue)
        message = await asyncio.wait_for(answer, 10)
        assert message.correlation_id == "raw-1"
        doc = json.loads(message.body)
        assert isinstance(doc, dict)
        return doc


async def conversation(harness: BrokerHarness, count: int, peer: str = "42") -> str:
    """Send `count` user messages through the gateway; returns the session id once all are stored."""
    assert harness.gateway is not None
    last = None
    for n in range(count):
        text = f"Message {n}: tell me about topic {n} in a few words, please, with some detail."
        last = await harness.gateway.send_message(channel="telegram", peer_id=peer, user_id=peer, text=text)
    assert last is not None
    [turn] = await harness.turns.wait_for(last.event_id)
    return str(turn["sessionId"])


async def summarized_window(client: QueryClient, sid: str) -> QueryResponse:
    """Summary events get no reply: ask until the window uses the stored summary."""
    for _ in range(150):
        window = await client.context(sid, max_tokens=100, strategy="summarize")
        if window.result["summaries"]:
            return window
        await asyncio.sleep(0.1)
    raise AssertionError("the summary was never stored or never used")


async def test_history_context_show_list_and_export_round_trip(harness: BrokerHarness) -> None:
    await harness.start_worker()
    await harness.start_worker()  # competing consumers: either may answer
    sid = await conversation(harness, 5)
    async with query_client(harness) as client:
        history = await client.history(sid, limit=3)
        assert history.ok and [e["seq"] for e in history.result] == [3, 4, 5]
        text = await client.history(sid, format="text")
        assert text.ok and text.result.startswith("[user] Message 0:")
        context = await client.context(sid, max_tokens=1000, strategy="recent")
        assert context.ok and context.result["strategy"] == "recent" and len(context.result["entries"]) == 5
        assert context.result["messages"][-1]["content"].startswith("Message 4:")
        show = await client.show(sid)
        assert show.ok and show.result["id"] == sid and show.result["messageCount"] == 5
        listed = await client.list_sessions(agent_id="main")
        assert listed.ok and sid in [s["id"] for s in listed.result["items"]]
        export = await client.export(sid, format="jsonl")
        assert export.ok and len(export.result.splitlines()) == 5
        many = await asyncio.gather(*(client.show(sid) for _ in range(20)))
        assert all(r.ok for r in many)


async def test_bad_requests_get_a_clear_answer_and_the_worker_keeps_going(harness: BrokerHarness) -> None:
    await harness.start_worker()
    sid = await conversation(harness, 1)
    not_json = await raw_query(harness, b"{nope")
    assert not_json["ok"] is False and not_json["code"] == "invalid-request"
    unknown = await raw_query(harness, json.dumps({"query": "delete-everything"}).encode())
    assert unknown["code"] == "invalid-request" and "query" in str(unknown["error"])
    no_session = await raw_query(harness, json.dumps({"query": "history"}).encode())
    assert "needs sessionId" in str(no_session["error"])
    bad_format = await raw_query(harness, json.dumps({"query": "list", "format": "jsonl"}).encode())
    assert "does not apply to a list query" in str(bad_format["error"])
    async with query_client(harness) as client:
        missing = await client.show("no-such-session")
        assert (missing.ok, missing.code) == (False, "session-not-found")
        too_small = await client.context(sid, max_tokens=1)
        assert too_small.code == "invalid-argument" and "smaller than the newest entry" in str(too_small.error)
        assert (await client.show(sid)).ok


async def test_summarize_query_requests_a_summary_and_uses_it_once_stored(harness: BrokerHarness) -> None:
    await harness.start_worker()
    requests = Tap()
    connection = await aio_pika.connect_robust(harness.url)
    async with connection:
        tap = await bound_queue(await connection.channel(), harness.names.summarize_exchange)
        await tap.consume(requests.on_message, no_ack=True)
        sid = await conversation(harness, 30)
        async with query_client(harness) as client:
            first = await client.context(sid, max_tokens=100, strategy="summarize")
            assert first.ok and first.result["uncovered"] is not None and first.result["digest"]
            low, high = first.result["uncovered"]["fromSeq"], first.result["uncovered"]["toSeq"]
            await requests.wait_count(1)
            [request] = requests.items
            assert (request["type"], request["sessionId"], request["fromSeq"], request["toSeq"]) == (
                "summarize.request",
                sid,
                low,
                high,
            )
            assert request["eventId"] == derived_id(sid, f"summarize:{low}:{high}")
            await client.context(sid, max_tokens=100, strategy="summarize")
            await requests.wait_count(2)
            assert requests.items[1]["eventId"] == request["eventId"]  # a repeat de-duplicates

            assert harness.gateway is not None
            summary = SummaryProduced(
                event_id=uuid.uuid4().hex, session_id=sid, from_seq=low, to_seq=high, content="They listed topics."
            )
            await harness.gateway.publish(summary, request["orderingKey"])
            window = await summarized_window(client, sid)
            assert window.result["uncovered"] is None and window.result["totalTokens"] <= 100
            assert window.result["messages"][0]["content"].endswith("They listed topics.")
