"""Contract: messages, history, clear, export and idempotency on every store."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from schemas import DeliveryContext, Usage
from tests.conftest import MakeManager
from tests.support.addresses import ADDR
from worker import (
    ContentTooLarge,
    InvalidArgument,
    SessionManager,
    SessionNotActive,
    SessionNotFound,
    create_session_manager,
)
from worker.engine.clock import ManualClock
from worker.engine.tokens import TiktokenCounter
from worker.stores.base import SessionStore


async def test_a_conversation_counts_usage_and_tokens(manager: SessionManager) -> None:
    session = await manager.get_or_create_session(**ADDR)
    await manager.add_message(session.id, "user", "What is my portfolio value?")
    reply = await manager.add_message(
        session.id,
        "assistant",
        "Your portfolio is worth $10,234.56",
        usage={"inputTokens": 500, "outputTokens": 200},
    )
    assert reply.seq == 2 and reply.usage == Usage(input_tokens=500, output_tokens=200)
    assert reply.token_count > 0
    stored = await manager.get_session(session.id)
    assert (stored.message_count, stored.input_tokens, stored.output_tokens) == (2, 500, 200)
    assert stored.last_activity_at >= session.last_activity_at
    history = await manager.get_history(session.id, limit=50, format="messages")
    assert [(m.role, m.content) for m in history] == [
        ("user", "What is my portfolio value?"),
        ("assistant", "Your portfolio is worth $10,234.56"),
    ]
    text = await manager.get_history(session.id, format="text")
    assert text == "[user] What is my portfolio value?\n[assistant] Your portfolio is worth $10,234.56"
    markdown = await manager.get_history(session.id, format="markdown")
    assert "**User**" in markdown and "**Assistant**" in markdown


class ThreadNotingCounter:
    """tiktoken's counts, noting the thread that made each."""

    def __init__(self, inner: TiktokenCounter) -> None:
        self.inner = inner
        self.threads: list[threading.Thread] = []

    def count(self, text: str) -> int:
        self.threads.append(threading.current_thread())
        return self.inner.count(text)


async def test_each_entry_is_counted_once(
    store: SessionStore, clock: ManualClock, token_counter: TiktokenCounter
) -> None:
    counter = ThreadNotingCounter(token_counter)
    manager = create_session_manager(store=store, clock=clock, token_counter=counter)
    session = await manager.get_or_create_session(**ADDR)
    texts = ["What is my portfolio value?", "Rebalance it, please: 60/40 🙂", "<|endoftext|> is plain text here"]
    written = [await manager.add_message(session.id, "user", text) for text in texts]
    expected = [token_counter.count(text) for text in texts]
    assert [entry.token_count for entry in written] == expected
    assert [entry.token_count for entry in await manager.get_history(session.id)] == expected
    assert len(counter.threads) == len(texts)  # one count per entry, however many threads ask


async def test_fifty_concurrent_appends_get_dense_sequence(manager: SessionManager) -> None:
    session = await manager.get_or_create_session(**ADDR)
    entries = await asyncio.gather(*(manager.add_message(session.id, "user", f"m{n}") for n in range(50)))
    assert sorted(e.seq for e in entries) == list(range(1, 51))
    assert (await manager.get_session(session.id)).message_count == 50
    history = await manager.get_history(session.id, limit=100)
    assert [e.seq for e in history] == list(range(1, 51))


async def test_concurrent_appends_from_two_managers_stay_dense(make_manager: MakeManager) -> None:
    left, right = make_manager(), make_manager()
    session = await left.get_or_create_session(**ADDR)
    writes = [m.add_message(session.id, "user", f"m{n}") for n in range(20) for m in (left, right)]
    entries = await asyncio.gather(*writes)
    assert sorted(e.seq for e in entries) == list(range(1, 41))
    assert (await left.get_session(session.id)).message_count == 40


async def test_same_event_id_stores_one_entry(manager: SessionManager) -> None:
    session = await manager.get_or_create_session(**ADDR)
    first = await manager.add_message(session.id, "user", "hi", event_id="evt-1")
    again = await manager.add_message(session.id, "user", "hi", event_id="evt-1")
    together = await asyncio.gather(*(manager.add_message(session.id, "user", "x", event_id="evt-2") for _ in range(5)))
    assert again.seq == first.seq and {e.seq for e in together} == {2}
    assert (await manager.get_session(session.id)).message_count == 2


async def test_redelivered_event_after_a_reset_is_not_stored_twice(manager: SessionManager) -> None:
    old = await manager.get_or_create_session(**ADDR)
    await manager.add_message(old.id, "user", "hi", event_id="evt-9")
    new = await manager.reset(user_id="user-123", channel_id="telegram")
    again = await manager.add_message(new.id, "user", "hi", event_id="evt-9")
    assert again.session_id == old.id
    assert (await manager.get_session(new.id)).message_count == 0


async def test_tool_entries_keep_name_args_and_result(manager: SessionManager) -> None:
    session = await manager.get_or_create_session(**ADDR)
    await manager.add_message(session.id, "user", "What's the weather?")
    await manager.add_message(session.id, "tool", tool="web-search", args={"query": "weather"})
    await manager.add_message(session.id, "tool-result", tool="web-search", result="Sunny, 72°F")
    history = await manager.get_history(session.id)
    assert history[1].tool == "web-search" and history[1].args == {"query": "weather"}
    assert history[2].result == "Sunny, 72°F"


async def test_clear_history_keeps_the_session(manager: SessionManager) -> None:
    session = await manager.get_or_create_session(**ADDR)
    for n in range(3):
        await manager.add_message(session.id, "user", f"old {n}")
    cleared = await manager.clear_history(session.id)
    assert cleared.id == session.id and cleared.message_count == 0
    assert await manager.get_history(session.id) == []
    await manager.add_message(session.id, "user", "fresh")
    assert [e.content for e in await manager.get_history(session.id)] == ["fresh"]
    assert (await manager.get_or_create_session(**ADDR)).id == session.id
    assert (await manager.get_session(session.id)).message_count == 1


async def test_history_limit_returns_the_newest(manager: SessionManager) -> None:
    session = await manager.get_or_create_session(**ADDR)
    for n in range(10):
        await manager.add_message(session.id, "user", f"m{n}")
    assert [e.content for e in await manager.get_history(session.id, limit=3)] == ["m7", "m8", "m9"]


async def test_exports_in_every_format(manager: SessionManager) -> None:
    session = await manager.get_or_create_session(**ADDR)
    await manager.add_message(session.id, "user", "Hello!")
    await manager.add_message(
        session.id, "assistant", "Hi! How can I help?", usage={"inputTokens": 5, "outputTokens": 6}
    )
    await manager.add_message(session.id, "tool", tool="web-search", args={"query": "weather"})
    await manager.add_message(session.id, "tool-result", result="Sunny, 72°F")
    lines = [json.loads(line) for line in (await manager.export(session.id, format="jsonl")).splitlines()]
    assert [list(line) for line in lines] == [
        ["role", "content", "timestamp"],
        ["role", "content", "timestamp"],
        ["role", "tool", "args", "timestamp"],
        ["role", "result", "timestamp"],
    ]
    assert lines[0] == {"role": "user", "content": "Hello!", "timestamp": "2026-03-03T10:00:00Z"}
    assert lines[3]["result"] == "Sunny, 72°F"
    with_meta = json.loads((await manager.export(session.id, format="jsonl", include_metadata=True)).splitlines()[1])
    assert with_meta["seq"] == 2 and with_meta["usage"] == {"inputTokens": 5, "outputTokens": 6}
    doc = json.loads(await manager.export(session.id, format="json", include_metadata=True))
    assert doc["sessionId"] == session.id and len(doc["messages"]) == 4
    assert doc["session"]["messageCount"] == 4 and doc["session"]["agentId"] == "main"
    markdown = await manager.export(session.id, format="markdown", include_metadata=True)
    assert markdown.startswith(f"# Session {session.id}") and "**Messages:** 4" in markdown
    assert "web-search" in markdown and "Sunny, 72°F" in markdown
    plain_md = await manager.export(session.id, format="markdown")
    assert "**Messages:**" not in plain_md


async def test_delivery_context_merges_per_message(manager: SessionManager) -> None:
    session = await manager.get_or_create_session(
        user_id="u1", channel_id="discord", peer_id="123", account_id="default"
    )
    await manager.add_message(
        session.id,
        "user",
        "in a thread",
        delivery=DeliveryContext(channel="discord", to="123", thread_id="thread-abc-123"),
    )
    current = await manager.get_session(session.id)
    assert current.delivery_context == DeliveryContext(
        channel="discord", to="123", account_id="default", thread_id="thread-abc-123"
    )
    assert current.last_thread_id == "thread-abc-123"
    await manager.add_message(
        session.id, "user", "from telegram", delivery=DeliveryContext(channel=" Telegram ", to="555")
    )
    moved = await manager.get_session(session.id)
    assert moved.delivery_context == DeliveryContext(channel="telegram", to="555")
    assert (moved.last_channel, moved.last_account_id, moved.last_thread_id) == ("telegram", None, None)


async def test_bad_messages_get_typed_errors(make_manager: MakeManager) -> None:
    manager = make_manager(max_content_bytes=1000)
    session = await manager.get_or_create_session(**ADDR)
    with pytest.raises(ContentTooLarge, match="over the limit of 1000 bytes"):
        await manager.add_message(session.id, "user", "x" * 2000)
    with pytest.raises(InvalidArgument, match="unknown role"):
        await manager.add_message(session.id, "wizard", "hi")  # type: ignore[arg-type]
    with pytest.raises(SessionNotFound):
        await manager.add_message("s_missing", "user", "hi")
    await manager.reset(user_id="user-123", channel_id="telegram")
    with pytest.raises(SessionNotActive, match="archived"):
        await manager.add_message(session.id, "user", "late")
    assert (await manager.get_session(session.id)).message_count == 0
