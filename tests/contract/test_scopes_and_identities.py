"""Scopes beyond one chat: per-account-channel-peer, and identity links under per-peer."""

from __future__ import annotations

import json

from tests.conftest import MakeManager
from tests.support.fakes import Delivery, RecordingPublisher, deliver, handler_for
from worker.engine.scope import ChatAddress, session_key
from worker.sessions.manager import SessionManager


def _message(event_id: str, channel: str, user: str, text: str, account: str | None = None) -> Delivery:
    source = {"channel": channel, "peerId": user, "messageId": f"m{event_id}"}
    if account:
        source["accountId"] = account
    event = {"type": "message.inbound", "eventId": event_id, "source": source, "text": text}
    return Delivery(json.dumps(event).encode())


def test_per_account_channel_peer_keys_each_bot_account_apart() -> None:
    one = ChatAddress(channel="telegram", user_id="42", account_id="bot-a")
    other = ChatAddress(channel="telegram", user_id="42", account_id="bot-b")
    group = ChatAddress(channel="telegram", peer_id="-100", account_id="bot-a", chat_type="group")
    assert session_key("per-account-channel-peer", one) == "agent:main:telegram:account:bot-a:peer:42"
    assert session_key("per-account-channel-peer", other) == "agent:main:telegram:account:bot-b:peer:42"
    assert session_key("per-account-channel-peer", group) == "agent:main:telegram:account:bot-a:group:-100"
    assert session_key("per-channel-peer", one) == session_key("per-channel-peer", other)


async def test_two_bot_accounts_keep_two_sessions(make_manager: MakeManager) -> None:
    manager = make_manager(scope="per-account-channel-peer")
    a = await manager.get_or_create_session(user_id="42", channel_id="telegram", account_id="bot-a")
    b = await manager.get_or_create_session(user_id="42", channel_id="telegram", account_id="bot-b")
    again = await manager.get_or_create_session(user_id="42", channel_id="telegram", account_id="bot-a")
    assert a.id != b.id and again.id == a.id


async def test_linked_accounts_share_a_session_and_replies_go_where_each_came_from(manager: SessionManager) -> None:
    await manager.agents.update("main", scope="per-peer", identity_links={"alice": ("Telegram:111", "discord:222")})
    publisher = RecordingPublisher()
    handler = handler_for(manager, publisher)
    for delivery in (
        _message("1", "telegram", "111", "from telegram"),
        _message("2", "discord", "222", "from discord"),
        _message("3", "discord", "333", "someone else"),
    ):
        delivery.routing_key = "agent:main:identity:alice"
        await deliver(handler, delivery)
    forwarded = list(publisher.forwarded)
    assert forwarded == ["agent:main:peer:333"]  # the unlinked user's slot is another one
    first, second = (o.turns[0] for o in publisher.outcomes)
    assert first.session_id == second.session_id and first.ordering_key == "agent:main:identity:alice"
    assert (first.delivery.channel, first.delivery.to) == ("telegram", "111")
    assert (second.delivery.channel, second.delivery.to) == ("discord", "222")
    show = json.dumps(
        {"type": "command", "eventId": "4", "source": {"channel": "discord", "peerId": "222"}, "command": "/session"}
    )
    await deliver(handler, Delivery(show.encode(), routing_key="agent:main:identity:alice"))
    assert "Identity: alice" in publisher.outcomes[-1].replies[0].text
