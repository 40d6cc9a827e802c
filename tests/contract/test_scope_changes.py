"""A scope change strands nothing: sessions the new scope has no slot for are archived and their
chats told once; the next message opens the session of the new scope. Every direction."""

from __future__ import annotations

import json
from itertools import permutations

import pytest

from schemas import SCOPES, Scope
from tests.support.fakes import Delivery, RecordingPublisher, deliver, handler_for
from worker.engine.scope import ChatAddress, key_fits, session_key
from worker.sessions.manager import SessionManager

ADMIN = {"channel": "telegram", "peerId": "1", "accountId": "bot"}
CHATS = [("telegram", "1"), ("discord", "2")]


@pytest.mark.parametrize(("before", "after"), list(permutations(SCOPES, 2)))
def test_keys_fit_only_their_own_scope(before: Scope, after: Scope) -> None:
    address = ChatAddress(channel="telegram", user_id="1", account_id="bot")
    assert key_fits(before, session_key(before, address))
    assert not key_fits(after, session_key(before, address))
    group = ChatAddress(channel="telegram", peer_id="-100", account_id="bot", chat_type="group")
    split = "per-account-channel-peer" in (before, after)
    assert key_fits(after, session_key(before, group)) is not split


def _message(event_id: str, channel: str, peer: str, text: str) -> Delivery:
    source = {"channel": channel, "peerId": peer, "accountId": "bot"}
    body = {"type": "message.inbound", "eventId": event_id, "source": source, "text": text}
    return Delivery(json.dumps(body).encode())


@pytest.mark.parametrize(("before", "after"), list(permutations(SCOPES, 2)))
async def test_changing_the_scope_archives_what_no_longer_fits(
    manager: SessionManager, before: Scope, after: Scope
) -> None:
    await manager.agents.update("main", scope=before, admins=("telegram:1",))
    publisher = RecordingPublisher()
    handler = handler_for(manager, publisher)
    for index, (channel, peer) in enumerate(CHATS):
        delivery = _message(f"m{index}", channel, peer, "hello")
        delivery.routing_key = session_key(before, ChatAddress(channel=channel, user_id=peer, account_id="bot"))
        await deliver(handler, delivery)
    old = {s.id for s in (await manager.list_sessions(limit=10)).items}
    change = {"type": "command", "eventId": "c", "source": ADMIN, "command": f"/session scope {after}"}
    await deliver(
        handler, Delivery(json.dumps(change).encode(), routing_key=publisher.outcomes[0].turns[0].ordering_key)
    )
    outcome = publisher.outcomes[-1]
    assert outcome.replies[0].text.startswith(f"Session scope is now {after}")
    told = {(n.session_id, n.delivery.channel if n.delivery else None) for n in outcome.notices}
    assert {session_id for session_id, _ in told} == old  # each archived session's chat told once
    assert all(n.kind == "scope-change" for n in outcome.notices)
    statuses = {s.id: (s.status, s.archived_reason) for s in (await manager.list_sessions(limit=10)).items}
    assert all(statuses[i] == ("archived", "scope-change") for i in old)
    again = _message("m9", "telegram", "1", "after the change")
    again.routing_key = session_key(after, ChatAddress(channel="telegram", user_id="1", account_id="bot"))
    await deliver(handler, again)
    turn = publisher.outcomes[-1].turns[0]
    assert turn.session_id not in old and key_fits(after, turn.ordering_key)
