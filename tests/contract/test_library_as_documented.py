"""The library as its documented API is used: no open() needed, typed errors only, content required."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MakeManager
from worker import InvalidArgument, SessionsError, create_session_manager
from worker.engine.tokens import TiktokenCounter
from worker.sessions.manager import SessionManager


async def test_a_manager_opens_itself_on_first_use(tmp_path: Path, token_counter: TiktokenCounter) -> None:
    manager = create_session_manager(storage="sqlite", db_path=str(tmp_path / "s.db"), token_counter=token_counter)
    try:
        session = await manager.get_or_create_session(user_id="u1", channel_id="telegram")
        await manager.add_message(session.id, "user", "hello")
        assert [e.content for e in await manager.get_history(session.id)] == ["hello"]
    finally:
        await manager.close()


@pytest.mark.parametrize(
    ("role", "content", "fields", "says"),
    [
        ("user", None, {}, "user entries need text"),
        ("user", "", {}, "user entries need text"),
        ("assistant", "   ", {}, "assistant entries need text"),
        ("tool", None, {}, "needs the tool's name"),
        ("tool-result", None, {}, "needs a result or content"),
        ("user", "hi", {"usage": {"inputTokens": -5}}, "invalid usage"),
    ],
)
async def test_bad_entries_are_refused_with_typed_errors(
    manager: SessionManager, role: Any, content: str | None, fields: dict[str, Any], says: str
) -> None:
    session = await manager.get_or_create_session(user_id="u1", channel_id="telegram")
    with pytest.raises(InvalidArgument, match=says):
        await manager.add_message(session.id, role, content, **fields)
    assert (await manager.get_session(session.id)).message_count == 0


async def test_summaries_are_added_through_the_library(make_manager: MakeManager) -> None:
    manager = make_manager()
    session = await manager.get_or_create_session(user_id="u1", channel_id="telegram")
    for text in ("one", "two", "three"):
        await manager.add_message(session.id, "user", text)
    summary = await manager.add_summary(session.id, 1, 2, "the first two")
    assert (summary.from_seq, summary.to_seq, summary.token_count > 0) == (1, 2, True)
    window = await manager.get_context_history(session.id, max_tokens=10_000, strategy="summarize")
    assert window is not None
    with pytest.raises(SessionsError, match="outside the transcript"):
        await manager.add_summary(session.id, 2, 9, "too far")
