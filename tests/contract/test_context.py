"""Contract: context windows (recent, smart, summarize) on every store."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast, get_args

import pytest

from benchmarks.population import insert_entries
from schemas import ContextStrategy, Summary
from tests.support.addresses import ADDR
from worker import InvalidArgument, SessionManager
from worker.engine.sealing import seal_summary
from worker.sessions.context import ContextWindow
from worker.stores.base import SessionStore, StoredEntry

STRATEGIES: tuple[ContextStrategy, ...] = get_args(ContextStrategy)


async def chat(manager: SessionManager, count: int, label: str = "Message", sid: str | None = None) -> str:
    """A conversation whose entries differ in length; entry n says "<label> n talks about ..."."""
    sid = sid or (await manager.get_or_create_session(**ADDR)).id
    for n in range(count):
        filler = "and then some more words about it " * (n % 4 + 1)
        await manager.add_message(sid, "user" if n % 2 == 0 else "assistant", f"{label} {n} talks about {filler}.")
    return sid


def spent(manager: SessionManager, window: ContextWindow) -> int:
    digest = 0 if window.digest is None else manager.transcript.count_tokens(window.digest)
    return sum(e.token_count for e in window.entries) + sum(s.token_count for s in window.summaries) + digest


async def store_summary(manager: SessionManager, sid: str, low: int, high: int, content: str) -> None:
    summary = Summary(
        id=uuid.uuid4().hex,
        session_id=sid,
        from_seq=low,
        to_seq=high,
        content=content,
        token_count=manager.transcript.count_tokens(content),
        created_at=datetime(2026, 3, 3, tzinfo=UTC),
    )
    await manager.store.insert_summary(seal_summary(manager.transcript.codec, summary))


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_every_strategy_stays_within_budget_and_keeps_the_newest(
    manager: SessionManager, strategy: ContextStrategy
) -> None:
    sid = await chat(manager, 40)
    window = await manager.get_context_history(sid, max_tokens=150, strategy=strategy)
    seqs = [e.seq for e in window.entries]
    assert window.strategy == strategy and window.max_tokens == 150
    assert seqs[-1] == 40 and seqs == sorted(set(seqs))
    assert window.total_tokens == spent(manager, window) <= 150
    json.dumps(window.to_wire())  # the AMQP answer must serialize


async def test_recent_is_the_newest_run_that_fits(manager: SessionManager) -> None:
    sid = await chat(manager, 30)
    window = await manager.get_context_history(sid, max_tokens=100, strategy="recent")
    seqs = [e.seq for e in window.entries]
    assert seqs == list(range(seqs[0], 31)) and window.summaries == [] and window.uncovered is None
    everything = {e.seq: e for e in await manager.get_history(sid, limit=30)}
    assert window.total_tokens + everything[seqs[0] - 1].token_count > 100  # the next older one did not fit
    assert [m["content"] for m in window.messages()] == [e.content for e in window.entries]


async def test_newest_entry_larger_than_the_budget_is_an_error(manager: SessionManager) -> None:
    sid = await chat(manager, 3)
    newest = await manager.add_message(sid, "user", "a long message " * 20)
    for strategy in STRATEGIES:
        with pytest.raises(
            InvalidArgument, match=rf"max_tokens=5 is smaller than the newest entry \({newest.token_count}"
        ):
            await manager.get_context_history(sid, max_tokens=5, strategy=strategy)
    with pytest.raises(InvalidArgument, match="max_tokens must be at least 1"):
        await manager.get_context_history(sid, max_tokens=0)
    with pytest.raises(InvalidArgument, match="unknown context strategy"):
        await manager.get_context_history(sid, strategy=cast(ContextStrategy, "oldest"))


async def test_defaults_come_from_the_agent_settings(manager: SessionManager) -> None:
    sid = await chat(manager, 20)
    whole = await manager.get_context_history(sid)
    assert (whole.strategy, whole.max_tokens, len(whole.entries)) == ("recent", 100_000, 20)
    await manager.agents.update("main", context={"max_tokens": 60, "strategy": "smart"})
    window = await manager.get_context_history(sid)
    assert (window.strategy, window.max_tokens) == ("smart", 60) and window.total_tokens <= 60


async def test_empty_session_has_an_empty_window(manager: SessionManager) -> None:
    session = await manager.get_or_create_session(**ADDR)
    for strategy in STRATEGIES:
        window = await manager.get_context_history(session.id, max_tokens=10, strategy=strategy)
        assert (window.entries, window.total_tokens, window.uncovered, window.messages()) == ([], 0, None, [])


async def test_smart_keeps_system_and_important_entries(manager: SessionManager) -> None:
    session = await manager.get_or_create_session(**ADDR)
    await manager.add_message(session.id, "system", "You are a helpful assistant.")
    await chat(manager, 8, sid=session.id)
    await manager.add_message(session.id, "user", "My account number is 4242.", important=True)
    await chat(manager, 8, sid=session.id)
    await manager.mark_important(session.id, 5)
    await chat(manager, 20, sid=session.id)
    last = (await manager.get_session(session.id)).last_seq
    window = await manager.get_context_history(session.id, max_tokens=140, strategy="smart")
    seqs = [e.seq for e in window.entries]
    assert {1, 5, 10, last} <= set(seqs) and seqs == sorted(set(seqs))
    assert window.total_tokens == spent(manager, window) <= 140
    assert window.messages()[0] == {"role": "system", "content": "You are a helpful assistant."}
    recent = await manager.get_context_history(session.id, max_tokens=140, strategy="recent")
    assert 1 not in {e.seq for e in recent.entries}  # what smart kept would have been lost


async def test_summarize_without_summaries_reports_the_gap_and_a_digest(manager: SessionManager) -> None:
    sid = await chat(manager, 40)
    window = await manager.get_context_history(sid, max_tokens=200, strategy="summarize")
    start = window.entries[0].seq
    assert window.uncovered == (1, start - 1) and window.summaries == []
    assert window.digest is not None and window.digest.startswith("Earlier: ")
    assert f"Message {start - 2} talks" in window.digest  # the newest uncovered entry (seq start-1)
    assert sum(e.token_count for e in window.entries) <= 150 or len(window.entries) == 1
    assert window.total_tokens == spent(manager, window) <= 200
    assert window.messages()[0] == {"role": "system", "content": window.digest}


async def test_summarize_uses_stored_summaries_next_time(manager: SessionManager) -> None:
    sid = await chat(manager, 40)
    first = await manager.get_context_history(sid, max_tokens=200, strategy="summarize")
    assert first.uncovered is not None
    low, high = first.uncovered
    await store_summary(manager, sid, low, 10, "They said hello.")
    second = await manager.get_context_history(sid, max_tokens=200, strategy="summarize")
    assert [(s.from_seq, s.to_seq, s.content) for s in second.summaries] == [(1, 10, "They said hello.")]
    assert second.uncovered == (11, high) and second.total_tokens <= 200
    await store_summary(manager, sid, 11, high, "Then they talked at length.")
    third = await manager.get_context_history(sid, max_tokens=200, strategy="summarize")
    assert [(s.from_seq, s.to_seq) for s in third.summaries] == [(1, 10), (11, high)]
    assert third.uncovered is None and third.digest is None
    assert third.total_tokens == spent(manager, third) <= 200
    assert [m["role"] for m in third.messages()[:2]] == ["system", "system"]
    assert "They said hello." in third.messages()[0]["content"]


async def test_summarize_takes_everything_when_it_fits(manager: SessionManager) -> None:
    sid = await chat(manager, 6)
    window = await manager.get_context_history(sid, max_tokens=10_000, strategy="summarize")
    assert [e.seq for e in window.entries] == list(range(1, 7))
    assert (window.uncovered, window.digest, window.summaries) == (None, None, [])


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_cleared_entries_never_appear(manager: SessionManager, strategy: ContextStrategy) -> None:
    sid = await chat(manager, 10, label="Secret")
    await manager.mark_important(sid, 3)
    await store_summary(manager, sid, 1, 10, "Secret summary.")
    await manager.clear_history(sid)
    await chat(manager, 12, label="Fresh", sid=sid)
    for budget in (60, 10_000):
        window = await manager.get_context_history(sid, max_tokens=budget, strategy=strategy)
        text = json.dumps(window.to_wire())
        assert "Secret" not in text and all(e.seq > 10 for e in window.entries)
        assert window.uncovered is None or window.uncovered[0] > 10


async def test_restored_checkpoint_hides_later_entries(manager: SessionManager) -> None:
    sid = await chat(manager, 5, label="Kept")
    checkpoint = await manager.save_checkpoint(sid, "before")
    await chat(manager, 5, label="Dropped", sid=sid)
    await manager.restore_checkpoint(checkpoint.id)
    await chat(manager, 2, label="After", sid=sid)
    whole = await manager.get_context_history(sid, max_tokens=10_000, strategy="smart")
    assert [e.seq for e in whole.entries] == [1, 2, 3, 4, 5, 11, 12]
    newest = whole.entries[-1].token_count + whole.entries[-2].token_count
    window = await manager.get_context_history(sid, max_tokens=newest + 40, strategy="summarize")
    assert window.uncovered is not None and window.uncovered[1] <= 5
    assert "Dropped" not in json.dumps(window.to_wire())


async def test_tool_entries_become_llm_messages(manager: SessionManager) -> None:
    session = await manager.get_or_create_session(**ADDR)
    await manager.add_message(session.id, "user", "Weather?")
    await manager.add_message(session.id, "tool", tool="web-search", args={"q": "weather"})
    await manager.add_message(session.id, "tool-result", tool="web-search", result="Sunny")
    window = await manager.get_context_history(session.id, max_tokens=1000)
    assert [m["role"] for m in window.messages()] == ["user", "assistant", "tool"]
    assert window.messages()[2]["content"] == "web-search: Sunny"


class CountingStore:
    """Counts the entries the window reads: proof that cost follows the window, not the transcript."""

    def __init__(self, inner: SessionStore) -> None:
        self.inner = inner
        self.rows = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def read_entries(self, session_id: str, start: int, end: int, limit: int) -> list[StoredEntry]:
        found = await self.inner.read_entries(session_id, start, end, limit)
        self.rows += len(found)
        return found

    async def read_pinned(self, session_id: str, start: int, end: int, limit: int) -> list[StoredEntry]:
        found = await self.inner.read_pinned(session_id, start, end, limit)
        self.rows += len(found)
        return found


def bulk_fill(db_path: Path, session_id: str, count: int) -> None:
    """Write `count` entries straight into SQLite: 100,000 appends one by one would take minutes."""
    with contextlib.closing(sqlite3.connect(db_path, timeout=30)) as conn:
        insert_entries(
            conn,
            session_id,
            count,
            text=lambda seq: f"Bulk entry {seq} says something. " + "words " * (seq % 9),
            tokens=lambda text: len(text) // 4,
            important_every=1000,
            now=datetime(2026, 3, 3, tzinfo=UTC),
        )


async def test_window_over_100k_entries_reads_only_the_window(
    manager: SessionManager, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if request.node.callspec.params["store"] != "sqlite":
        pytest.skip("the 100,000-entry transcript is filled straight into SQLite")
    session = await manager.get_or_create_session(**ADDR)
    bulk_fill(tmp_path / "sessions.db", session.id, 100_000)
    await chat(manager, 2, label="Latest", sid=session.id)
    counting = CountingStore(manager.store)
    monkeypatch.setattr(manager, "store", cast(SessionStore, counting))
    for strategy in STRATEGIES:
        counting.rows = 0
        started = time.perf_counter()
        window = await manager.get_context_history(session.id, max_tokens=2000, strategy=strategy)
        elapsed = time.perf_counter() - started
        assert window.entries[-1].seq == 100_002 and window.total_tokens <= 2000
        assert counting.rows < 1000 and elapsed < 1.0, (strategy, counting.rows, elapsed)
    smart = await manager.get_context_history(session.id, max_tokens=2000, strategy="smart")
    assert {99_000, 98_000} <= {e.seq for e in smart.entries}
    summarized = await manager.get_context_history(session.id, max_tokens=2000, strategy="summarize")
    assert summarized.uncovered is not None and summarized.uncovered[0] == 1 and summarized.digest is not None
