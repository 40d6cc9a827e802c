"""A session's model override: set through the library, chat commands and an event; every turn
event of the session carries it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import MakeManager
from tests.support.fakes import Delivery, RecordingPublisher, deliver, handler_for
from worker.errors import InvalidArgument
from worker.sessions.manager import SessionManager

KEY = "agent:main:telegram:peer:100"


def _chat(event_id: str, text: str) -> Delivery:
    event: dict[str, Any] = {
        "type": "message.inbound",
        "eventId": event_id,
        "source": {"channel": "telegram", "peerId": "100"},
        "text": text,
    }
    return Delivery(json.dumps(event).encode(), routing_key=KEY, message_id=event_id)


async def test_the_library_sets_and_clears_a_model(manager: SessionManager) -> None:
    session = await manager.get_or_create_session(user_id="100", channel_id="telegram")
    assert (await manager.set_model(session.id, "gpt-4o")).model == "gpt-4o"
    assert (await manager.get_session(session.id)).model == "gpt-4o"
    assert (await manager.set_model(session.id, None)).model is None


async def test_an_allow_list_refuses_other_models(make_manager: MakeManager) -> None:
    manager = make_manager()
    await manager.agents.update("main", allowed_models=("claude-sonnet", "gpt-4o"))
    session = await manager.get_or_create_session(user_id="100", channel_id="telegram")
    with pytest.raises(InvalidArgument, match="choose one of: claude-sonnet, gpt-4o"):
        await manager.set_model(session.id, "gpt-2")
    publisher = RecordingPublisher()
    await deliver(handler_for(manager, publisher), _chat("m1", "/session model gpt-2"))
    [reply] = publisher.outcomes[0].replies
    assert reply.kind == "error" and "choose one of" in reply.text


async def test_chat_commands_set_show_and_clear_the_model_and_turns_carry_it(manager: SessionManager) -> None:
    publisher = RecordingPublisher()
    handler = handler_for(manager, publisher)
    for event_id, text in [
        ("1", "/session model"),
        ("2", "/session model gpt-4o"),
        ("3", "hello"),
        ("4", "/session model"),
        ("5", "/session model default"),
        ("6", "hello again"),
        ("7", "/new claude-sonnet"),
        ("8", "in the new session"),
    ]:
        await deliver(handler, _chat(event_id, text))
    said = [o.replies[0].text if o.replies else None for o in publisher.outcomes]
    turns = [o.turns[0] for o in publisher.outcomes if o.turns]
    assert said[0] == "No session yet: send a message to start one."
    assert said[1] == "Model set to gpt-4o for this session."
    assert said[3] == "Model: gpt-4o."
    assert said[4] == "Model back to the agent default."
    assert said[6] is not None and ", model claude-sonnet. Send /session resume" in said[6]
    assert [(t.text, t.model) for t in turns] == [
        ("hello", "gpt-4o"),
        ("hello again", None),
        ("in the new session", "claude-sonnet"),
    ]


async def test_an_event_sets_the_model(manager: SessionManager) -> None:
    session = await manager.get_or_create_session(user_id="100", channel_id="telegram")
    publisher = RecordingPublisher()
    event = {"type": "session.model", "eventId": "x", "sessionId": session.id, "model": "o3"}
    await deliver(handler_for(manager, publisher), Delivery(json.dumps(event).encode(), routing_key=session.key))
    assert (await manager.get_session(session.id)).model == "o3" and not publisher.dead
