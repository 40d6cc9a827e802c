"""Undoable resets: /session resume brings the previous session back, with what arrived since the
reset appended at its end; the replaced session is kept; idempotent on the event."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from tests.conftest import MakeManager
from tests.support.fakes import Delivery, RecordingPublisher, deliver, handler_for
from worker.engine.clock import ManualClock
from worker.engine.scope import ChatAddress
from worker.errors import InvalidArgument
from worker.sessions.manager import SessionManager

KEY = "agent:main:telegram:peer:100"
ADDRESS = ChatAddress(channel="telegram", user_id="100")


def _chat(event_id: str, text: str) -> Delivery:
    source = {"channel": "telegram", "peerId": "100", "messageId": f"m{event_id}"}
    body = {"type": "message.inbound", "eventId": event_id, "source": source, "text": text}
    return Delivery(json.dumps(body).encode(), routing_key=KEY)


async def _history(manager: SessionManager, session_id: str) -> list[str | None]:
    return [entry.content for entry in await manager.get_history(session_id, limit=100)]


async def test_resume_undoes_a_manual_reset(manager: SessionManager) -> None:
    publisher = RecordingPublisher()
    handler = handler_for(manager, publisher)
    for event_id, text in [("1", "before"), ("2", "/new"), ("3", "after one"), ("4", "after two")]:
        await deliver(handler, _chat(event_id, text))
    new_reply = publisher.outcomes[1].replies[0].text
    assert "Send /session resume to go back" in new_reply
    first = publisher.outcomes[0].turns[0].session_id
    second = publisher.outcomes[2].turns[0].session_id
    await deliver(handler, _chat("5", "/session resume"))
    said = publisher.outcomes[-1].replies[0].text
    assert said.startswith(f"Resumed session {first}") and f"/session resume {second}" in said
    assert await _history(manager, first) == ["before", "after one", "after two"]
    statuses = {s.id: (s.status, s.archived_reason) for s in (await manager.list_sessions(limit=10)).items}
    assert statuses == {first: ("active", None), second: ("archived", "resumed-other")}
    assert await _history(manager, second) == ["after one", "after two"]  # kept intact
    await deliver(handler, _chat("6", "back in the first"))
    assert publisher.outcomes[-1].turns[0].session_id == first
    await deliver(handler, _chat("5", "/session resume"))  # the same event again: its answer replayed
    assert publisher.outcomes[-1].replies[0].text == said
    assert await _history(manager, first) == ["before", "after one", "after two", "back in the first"]


async def test_resume_undoes_an_idle_reset_and_keeps_the_triggering_message(
    make_manager: MakeManager, clock: ManualClock
) -> None:
    manager = make_manager(idle_reset_minutes=30)
    publisher = RecordingPublisher()
    handler = handler_for(manager, publisher, clock=clock)
    await deliver(handler, _chat("1", "hello"))
    clock.advance(timedelta(minutes=31))
    await deliver(handler, _chat("2", "are you there?"))  # triggers the reset, and is answered
    reset = publisher.outcomes[-1]
    assert reset.turns[0].text == "are you there?"
    assert "Send /session resume" in reset.notices[0].text
    old = reset.notices[0].session_id
    resumed = await manager.resume(ADDRESS)
    assert resumed.session.id == old and resumed.carried == 1
    assert await _history(manager, old) == ["hello", "are you there?"]


async def test_resume_a_named_session_and_refusals(manager: SessionManager) -> None:
    first = await manager.get_or_create_session(user_id="100", channel_id="telegram")
    await manager.add_message(first.id, "user", "one")
    second = (await manager.reset_address(ADDRESS, "new")).session
    third = (await manager.reset_address(ADDRESS, "new")).session
    resumed = await manager.resume(ADDRESS, first.id)
    assert resumed.session.id == first.id and resumed.replaced is not None and resumed.replaced.id == third.id
    with pytest.raises(InvalidArgument, match="active one already"):
        await manager.resume(ADDRESS, first.id)
    with pytest.raises(Exception, match="no session s_elsewhere in this chat"):
        await manager.resume(ADDRESS, "s_elsewhere")
    again = await manager.resume_session(second.id)
    assert again.session.id == second.id
    lonely = ChatAddress(channel="telegram", user_id="200")
    await manager.get_or_create_session(user_id="200", channel_id="telegram")
    with pytest.raises(InvalidArgument, match="no earlier session"):
        await manager.resume(lonely)


async def test_the_resume_event(manager: SessionManager) -> None:
    first = await manager.get_or_create_session(user_id="100", channel_id="telegram")
    await manager.reset_address(ADDRESS, "new")
    publisher = RecordingPublisher()
    event = {"type": "session.resume", "eventId": "r1", "sessionId": first.id}
    await deliver(handler_for(manager, publisher), Delivery(json.dumps(event).encode(), routing_key=first.key))
    assert (await manager.get_session(first.id)).status == "active" and not publisher.dead
    assert publisher.outcomes[0].notices[0].kind == "session-resumed"
