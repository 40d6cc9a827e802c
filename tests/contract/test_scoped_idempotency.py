"""Idempotency scoped to where an event comes from, through the worker's event handler (no broker).

A chat event's key is (agent, chat, eventId), a session-addressed event's (agent, session, eventId):
the same id from another chat or session is another event; the same key with the same content is a
duplicate whose recorded outcome comes back byte for byte, fresh publish or redelivery; the same
key with other content is dead-lettered as `event-id-conflict` and changes nothing.
"""

from __future__ import annotations

import json
from typing import Any, cast

import pytest

from tests.support.fakes import Delivery, RecordingPublisher, handler_for
from tests.support.wire import agent_doc, command_doc, inbound_doc, key_of, reserialized, source_doc
from worker.amqp.consumer import EventHandler
from worker.engine.outcome import Outcome
from worker.sessions.manager import SessionManager

TG_100 = source_doc("telegram", "100", message_id="m-100")
TG_200 = source_doc("telegram", "200", message_id="m-200")


class Gateway:
    """Feeds wire documents to one EventHandler, as the broker would, and keeps what came out."""

    def __init__(self, manager: SessionManager) -> None:
        self.manager = manager
        self.publisher = RecordingPublisher()
        self.handler: EventHandler = handler_for(manager, self.publisher, max_payload_bytes=1 << 20)

    async def send(
        self, doc: dict[str, Any], *, body: bytes | None = None, redelivered: bool = False, key: str | None = None
    ) -> Outcome | None:
        """Deliver once; the outcome it published (None if it published nothing)."""
        before = len(self.publisher.outcomes)
        routing_key = key if key is not None else key_of(doc) if "source" in doc else ""
        delivery = Delivery(
            body if body is not None else json.dumps(doc).encode(),
            routing_key=routing_key,
            redelivered=redelivered,
            message_id=str(doc.get("eventId")),
        )
        await self.handler.handle(cast(Any, delivery))
        assert delivery.acks == 1, "every delivery is settled exactly once"
        assert self.publisher.forwarded == [], "the test publishes with the chat's own key"
        published = self.publisher.outcomes[before:]
        assert len(published) <= 1
        return published[0] if published else None

    async def history(self, session_id: str) -> list[str | None]:
        return [entry.content for entry in await self.manager.get_history(session_id, limit=100)]

    @property
    def dead_reasons(self) -> list[str]:
        return [reason for reason, _detail in self.publisher.dead]


def _only_turn(outcome: Outcome | None) -> Any:
    assert outcome is not None and len(outcome.turns) == 1, outcome
    return outcome.turns[0]


def _only_reply(outcome: Outcome | None) -> Any:
    assert outcome is not None and len(outcome.replies) == 1, outcome
    return outcome.replies[0]


async def test_the_same_event_id_from_another_chat_is_another_event(manager: SessionManager) -> None:
    gateway = Gateway(manager)
    turn_100 = _only_turn(await gateway.send(inbound_doc("tg-1", TG_100, "hello from 100")))
    turn_200 = _only_turn(await gateway.send(inbound_doc("tg-1", TG_200, "hello from 200")))
    assert gateway.dead_reasons == []
    assert turn_100.session_id != turn_200.session_id
    assert turn_100.event_id != turn_200.event_id, "outbound ids derive from the scoped key"
    assert turn_100.in_reply_to == turn_200.in_reply_to == "tg-1", "inReplyTo is the gateway's own id"
    assert (turn_100.delivery.to, turn_200.delivery.to) == ("100", "200")
    assert await gateway.history(turn_100.session_id) == ["hello from 100"]
    assert await gateway.history(turn_200.session_id) == ["hello from 200"]

    answer = agent_doc("a-1", turn_200.session_id, "answer for 200", in_reply_to="tg-1")
    reply = _only_reply(await gateway.send(answer, key=turn_200.ordering_key))
    assert reply.delivery.to == "200" and reply.delivery.reply_to_id == "m-200"
    assert await gateway.history(turn_100.session_id) == ["hello from 100"]
    assert await gateway.history(turn_200.session_id) == ["hello from 200", "answer for 200"]

    seen_100 = _only_reply(await gateway.send(inbound_doc("tg-2", TG_100, "/history")))
    seen_200 = _only_reply(await gateway.send(inbound_doc("tg-2", TG_200, "/history")))
    assert seen_100.event_id != seen_200.event_id
    assert "hello from 100" in seen_100.text and "200" not in seen_100.text
    assert "hello from 200" in seen_200.text and "hello from 100" not in seen_200.text
    again_200 = _only_reply(await gateway.send(inbound_doc("tg-2", TG_200, "/history"), redelivered=True))
    assert again_200.model_dump_json() == seen_200.model_dump_json(), "chat 200's own reply, not chat 100's"


@pytest.mark.parametrize("as_command_event", [False, True], ids=["text", "command-event"])
@pytest.mark.parametrize("command", ["/history", "/session", "/checkpoint list"])
async def test_a_fresh_republish_of_a_read_command_returns_the_recorded_outcome(
    manager: SessionManager, command: str, as_command_event: bool
) -> None:
    gateway = Gateway(manager)
    await gateway.send(inbound_doc("e1", TG_100, "first words"))
    await gateway.send(inbound_doc("e2", TG_100, '/checkpoint save "before"'))
    make = command_doc if as_command_event else inbound_doc
    first = await gateway.send(make("read-1", TG_100, command))
    first_reply = _only_reply(first)
    # The state changes: more messages, another checkpoint, so a re-run would answer differently.
    await gateway.send(inbound_doc("e3", TG_100, "later words"))
    await gateway.send(inbound_doc("e4", TG_100, '/checkpoint save "after"'))
    rerun = _only_reply(await gateway.send(make("read-2", TG_100, command)))
    assert rerun.text != first_reply.text, "the state change must show in a new command's answer"

    for redelivered in (False, True):
        again = await gateway.send(make("read-1", TG_100, command), redelivered=redelivered)
        assert again is not None and again.model_dump_json() == first.model_dump_json()  # type: ignore[union-attr]
    assert gateway.dead_reasons == []


CONFLICTS = {
    "other text": (inbound_doc("e1", TG_100, "hello"), inbound_doc("e1", TG_100, "changed")),
    "message then command": (inbound_doc("e1", TG_100, "hello"), command_doc("e1", TG_100, "/new")),
    "command then message": (inbound_doc("e1", TG_100, '/checkpoint save "a"'), inbound_doc("e1", TG_100, "hello")),
    "other thread": (
        inbound_doc("e1", TG_100, "hello"),
        inbound_doc("e1", {**TG_100, "threadId": "topic-9"}, "hello"),
    ),
    "other checkpoint name": (
        inbound_doc("e1", TG_100, '/checkpoint save "a"'),
        inbound_doc("e1", TG_100, '/checkpoint save "b"'),
    ),
}


@pytest.mark.parametrize("first_doc,second_doc", CONFLICTS.values(), ids=CONFLICTS.keys())
@pytest.mark.parametrize("redelivered", [False, True], ids=["fresh", "redelivered"])
async def test_the_same_key_with_other_content_is_a_conflict_and_changes_nothing(
    manager: SessionManager, first_doc: dict[str, Any], second_doc: dict[str, Any], redelivered: bool
) -> None:
    gateway = Gateway(manager)
    first = await gateway.send(first_doc)
    assert first is not None and gateway.dead_reasons == []
    session = await manager.get_or_create_session(user_id="100", channel_id="telegram", peer_id="100")
    before_history = await gateway.history(session.id)
    before_checkpoints = [cp.name for cp in await manager.list_checkpoints(session.id)]

    assert await gateway.send(second_doc, redelivered=redelivered) is None, "nothing is published for a conflict"
    assert gateway.dead_reasons == ["event-id-conflict"]
    after = await manager.get_session(session.id)
    assert after.status == "active", "the conflicting /new did not run"
    assert await gateway.history(session.id) == before_history
    assert [cp.name for cp in await manager.list_checkpoints(session.id)] == before_checkpoints
    # The first event is still answered as recorded.
    again = await gateway.send(first_doc, redelivered=True)
    assert again is not None and again.model_dump_json() == first.model_dump_json()


@pytest.mark.parametrize(
    "doc",
    [
        inbound_doc("e1", TG_100, "hello there"),
        inbound_doc("e1", {**TG_100, "threadId": "t-5", "userId": "100"}, "/session"),
        command_doc("e1", TG_100, "/checkpoint list"),
    ],
    ids=["message", "text-command", "command-event"],
)
async def test_a_reserialized_equal_event_is_a_duplicate(manager: SessionManager, doc: dict[str, Any]) -> None:
    gateway = Gateway(manager)
    first = await gateway.send(doc)
    assert first is not None
    copy = reserialized(doc)
    assert copy != json.dumps(doc).encode()
    again = await gateway.send(doc, body=copy)
    assert gateway.dead_reasons == [], "key order, occurredAt and spaces around ids are not content"
    assert again is not None and again.model_dump_json() == first.model_dump_json()
    session = await manager.get_or_create_session(user_id="100", channel_id="telegram", peer_id="100")
    expected_entries = 1 if doc["type"] == "message.inbound" and not doc["text"].startswith("/") else 0
    assert len(await gateway.history(session.id)) == expected_entries


async def test_session_addressed_events_are_scoped_by_session(manager: SessionManager) -> None:
    gateway = Gateway(manager)
    one = _only_turn(await gateway.send(inbound_doc("u-1", TG_100, "question one")))
    two = _only_turn(await gateway.send(inbound_doc("u-1", TG_200, "question two")))
    answer_one = agent_doc("a-1", one.session_id, "answer one", in_reply_to="u-1")
    answer_two = agent_doc("a-1", two.session_id, "answer two", in_reply_to="u-1")
    reply_one = _only_reply(await gateway.send(answer_one, key=one.ordering_key))
    reply_two = _only_reply(await gateway.send(answer_two, key=two.ordering_key))
    assert reply_one.event_id != reply_two.event_id
    assert (reply_one.delivery.to, reply_one.text) == ("100", "answer one")
    assert (reply_two.delivery.to, reply_two.text) == ("200", "answer two")

    # The same id in the same session: a duplicate if equal, a conflict if not.
    again = _only_reply(await gateway.send(answer_one, key=one.ordering_key))
    assert again.model_dump_json() == reply_one.model_dump_json()
    changed = agent_doc("a-1", one.session_id, "a different answer", in_reply_to="u-1")
    assert await gateway.send(changed, key=one.ordering_key) is None
    assert gateway.dead_reasons == ["event-id-conflict"]
    assert await gateway.history(one.session_id) == ["question one", "answer one"]
    assert await gateway.history(two.session_id) == ["question two", "answer two"]

    for turn in (one, two):
        mark = {"type": "entry.important", "eventId": "imp-1", "sessionId": turn.session_id, "seq": 1}
        await gateway.send(mark, key=turn.ordering_key)
    for turn in (one, two):
        [first_entry, *_] = await manager.get_history(turn.session_id, limit=10)
        assert first_entry.important, f"entry.important imp-1 applied in {turn.session_id} too"
    assert gateway.dead_reasons == ["event-id-conflict"]


async def test_in_reply_to_seq_routes_an_answer_in_a_session_shared_by_chats(manager: SessionManager) -> None:
    """Under scope `main` two chats share one session; both reuse eventId "1"."""
    await manager.set_scope("main")
    gateway = Gateway(manager)
    slot = "agent:main:main"
    discord = source_doc("discord", "1234567890123456789", message_id="d-msg")
    first = _only_turn(await gateway.send(inbound_doc("1", TG_100, "from telegram"), key=slot))
    second = _only_turn(await gateway.send(inbound_doc("1", discord, "from discord"), key=slot))
    assert first.session_id == second.session_id and (first.seq, second.seq) == (1, 2)
    assert first.event_id != second.event_id and gateway.dead_reasons == []

    to_discord = agent_doc("a-2", second.session_id, "to discord", in_reply_to="1", in_reply_to_seq=second.seq)
    to_telegram = agent_doc("a-1", first.session_id, "to telegram", in_reply_to="1", in_reply_to_seq=first.seq)
    reply_discord = _only_reply(await gateway.send(to_discord, key=slot))
    reply_telegram = _only_reply(await gateway.send(to_telegram, key=slot))
    assert (reply_discord.delivery.channel, reply_discord.delivery.to) == ("discord", "1234567890123456789")
    assert reply_discord.delivery.reply_to_id == "d-msg"
    assert (reply_telegram.delivery.channel, reply_telegram.delivery.to) == ("telegram", "100")
    assert reply_telegram.delivery.reply_to_id == "m-100"
