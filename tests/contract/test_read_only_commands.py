"""Read-only chat commands answer from what is stored and never open a session."""

from __future__ import annotations

import json

import pytest

from tests.support.fakes import Delivery, RecordingPublisher, deliver, handler_for
from worker.sessions.manager import SessionManager

READ_ONLY = ["/session", "/session list", "/history", "/history export", "/checkpoint list", "/help", "/session model"]


@pytest.mark.parametrize("text", READ_ONLY)
async def test_a_new_users_read_only_command_creates_no_session(manager: SessionManager, text: str) -> None:
    publisher = RecordingPublisher()
    event = {"type": "command", "eventId": "1", "source": {"channel": "telegram", "peerId": "100"}, "command": text}
    delivery = Delivery(json.dumps(event).encode(), routing_key="agent:main:telegram:peer:100")
    await deliver(handler_for(manager, publisher), delivery)
    [reply] = publisher.outcomes[0].replies
    assert reply.kind == "command-result" and reply.text and delivery.acks == 1
    assert not (await manager.list_sessions(limit=10)).items
