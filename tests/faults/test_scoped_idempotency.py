"""Idempotency scoped to the chat or session an event comes from, through the worker's handler."""

from __future__ import annotations

import json
from typing import Any

from schemas.events import ChatSource
from tests.support.fakes import Delivery, RecordingPublisher, deliver, handler_for
from worker.service.processor import ordering_key
from worker.sessions.manager import SessionManager


def _inbound(event_id: str, peer: str, text: str, **extra: Any) -> dict[str, Any]:
    source = {"channel": "telegram", "peerId": peer, "messageId": f"m-{event_id}"}
    return {"type": "message.inbound", "eventId": event_id, "source": source, "text": text, **extra}


def _delivery(
    event: dict[str, Any], *, redelivered: bool = False, body: bytes | None = None, key: str | None = None
) -> Delivery:
    source = ChatSource.model_validate(event["source"])
    return Delivery(
        body if body is not None else json.dumps(event).encode(),
        routing_key=key or ordering_key(event.get("agentId", "main"), source),
        redelivered=redelivered,
        message_id=event["eventId"],
    )


async def test_the_same_event_id_from_another_chat_is_another_event(manager: SessionManager) -> None:
    publisher = RecordingPublisher()
    handler = handler_for(manager, publisher)
    await deliver(handler, _delivery(_inbound("tg-1", "100", "from a hundred")))
    await deliver(handler, _delivery(_inbound("tg-1", "200", "from two hundred")))
    first, second = (outcome.turns[0] for outcome in publisher.outcomes)
    assert first.session_id != second.session_id and first.event_id != second.event_id
    assert (first.delivery.to, second.delivery.to) == ("100", "200")
    assert first.in_reply_to == second.in_reply_to == "tg-1"
    texts = [[e.content for e in await manager.get_history(t.session_id)] for t in (first, second)]
    assert texts == [["from a hundred"], ["from two hundred"]]
    assert not publisher.dead


async def test_a_fresh_publish_of_a_read_command_replays_its_first_answer(manager: SessionManager) -> None:
    publisher = RecordingPublisher()
    handler = handler_for(manager, publisher)
    await deliver(handler, _delivery(_inbound("1", "100", "hello")))
    history = _inbound("2", "100", "/history")
    await deliver(handler, _delivery(history))
    await deliver(handler, _delivery(_inbound("3", "100", "more since")))
    await deliver(handler, _delivery(history))  # published again, not redelivered
    first, again = (o.replies[0] for o in publisher.outcomes if o.replies)
    assert again == first and "more since" not in again.text


async def test_a_reserialized_duplicate_is_a_duplicate(manager: SessionManager) -> None:
    publisher = RecordingPublisher()
    handler = handler_for(manager, publisher)
    event = _inbound("7", "100", "/session")
    await deliver(handler, _delivery(event))
    reordered = {"text": event["text"], "occurredAt": "2026-01-01T00:00:00Z", **event}
    reordered["source"] = {"peerId": " 100 ", "channel": " Telegram ", "messageId": "m-7"}
    await deliver(handler, _delivery(event, body=json.dumps(reordered, indent=2).encode()))
    assert publisher.outcomes[0] == publisher.outcomes[1] and not publisher.dead


async def test_the_same_key_with_other_content_is_a_conflict(manager: SessionManager) -> None:
    publisher = RecordingPublisher()
    handler = handler_for(manager, publisher)
    await deliver(handler, _delivery(_inbound("9", "100", "the first")))
    await deliver(handler, _delivery(_inbound("9", "100", "something else")))
    await deliver(handler, _delivery(_inbound("c", "100", "/checkpoint list")))
    await deliver(handler, _delivery(_inbound("c", "100", "/history")))
    assert [reason for reason, _ in publisher.dead] == ["event-id-conflict", "event-id-conflict"]
    [session] = (await manager.list_sessions(limit=10)).items
    assert [e.content for e in await manager.get_history(session.id)] == ["the first"]
    assert len([o for o in publisher.outcomes if o.replies]) == 1


async def test_too_long_text_is_answered_and_dead_lettered_at_once(manager: SessionManager) -> None:
    publisher = RecordingPublisher()
    handler = handler_for(manager, publisher, max_payload_bytes=2_000_000)
    delivery = _delivery(_inbound("big", "-1001234567890", "x" * 300_000))
    await deliver(handler, delivery)
    [(reason, detail)] = publisher.dead
    [reply] = publisher.outcomes[0].replies
    assert reason == "too-long" and delivery.acks == 1
    assert reply.kind == "error" and reply.delivery.to == "-1001234567890"
    assert reply.text == detail == "message too long: 300,000 characters; the limit is 262,144"
    assert not (await manager.list_sessions(limit=10)).items


async def test_an_answer_goes_to_the_chat_of_the_entry_it_names(manager: SessionManager) -> None:
    await manager.set_scope("main")
    publisher = RecordingPublisher()
    handler = handler_for(manager, publisher)
    await deliver(handler, _delivery(_inbound("5", "100", "first chat"), key="agent:main:main"))
    await deliver(handler, _delivery(_inbound("5", "200", "second chat"), key="agent:main:main"))
    first = publisher.outcomes[0].turns[0]
    answer = {
        "type": "message.agent",
        "eventId": "a1",
        "sessionId": first.session_id,
        "role": "assistant",
        "content": "for the first chat",
        "inReplyTo": "5",
        "inReplyToSeq": first.seq,
    }
    await deliver(handler, Delivery(json.dumps(answer).encode(), routing_key=first.ordering_key, message_id="a1"))
    [reply] = publisher.outcomes[-1].replies
    assert reply.delivery.to == "100" and reply.delivery.reply_to_id == "m-5"
