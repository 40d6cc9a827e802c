"""Stores written before event ids were scoped: their entries are re-keyed once, at start-up, so an
event applied before the upgrade is still recognised when it comes back afterwards."""

from __future__ import annotations

import json

from schemas import DeliveryContext
from tests.support.fakes import Delivery, RecordingPublisher, deliver, handler_for
from worker.sessions.manager import SessionManager
from worker.stores.base import SessionStore
from worker.stores.mongo import MongoStore
from worker.stores.sqlite import SqliteStore


async def _forget_migration(store: SessionStore) -> None:
    """Make the store look as an older version left it: migration not yet run."""
    if isinstance(store, SqliteStore):
        await store._db.write(lambda conn: conn.execute("PRAGMA user_version = 0"), alone=True)
    else:
        assert isinstance(store, MongoStore)
        await store._meta.delete_many({})


async def test_entries_written_under_bare_ids_are_recognised_after_the_upgrade(
    manager: SessionManager, store: SessionStore
) -> None:
    route = DeliveryContext(channel="telegram", to="100")
    session = await manager.get_or_create_session(user_id="100", channel_id="telegram")
    # What the previous version wrote: the gateway's bare ids.
    await manager.add_message(session.id, "user", "before the upgrade", event_id="tg-1", delivery=route)
    await manager.add_message(session.id, "assistant", "an answer", event_id="agent-1")
    await _forget_migration(store)
    await store.ensure_schema()

    publisher = RecordingPublisher()
    handler = handler_for(manager, publisher)
    again = {"type": "message.inbound", "eventId": "tg-1", "source": {"channel": "telegram", "peerId": "100"}}
    other = {"type": "message.inbound", "eventId": "tg-1", "source": {"channel": "telegram", "peerId": "200"}}
    answer = {"type": "message.agent", "eventId": "agent-1", "sessionId": session.id, "role": "assistant"}
    for event, key, text in (
        (again, "agent:main:telegram:peer:100", "before the upgrade"),
        (other, "agent:main:telegram:peer:200", "a new chat"),
        (answer, "agent:main:telegram:peer:100", "an answer"),
    ):
        body = {**event, ("content" if event is answer else "text"): text}
        await deliver(handler, Delivery(json.dumps(body).encode(), routing_key=key, redelivered=True))
    contents = [e.content for e in await manager.get_history(session.id)]
    assert contents == ["before the upgrade", "an answer"]  # neither stored twice
    assert not publisher.dead
    turns = [turn for outcome in publisher.outcomes for turn in outcome.turns]
    assert [(t.delivery.to, t.text) for t in turns] == [("100", "before the upgrade"), ("200", "a new chat")]


async def test_outcomes_recorded_under_bare_ids_replay_only_for_their_own_chat(
    manager: SessionManager, store: SessionStore
) -> None:
    publisher = RecordingPublisher()
    handler = handler_for(manager, publisher)
    command = {"type": "command", "eventId": "c1", "command": "/help"}
    first = {**command, "source": {"channel": "telegram", "peerId": "100"}}
    await deliver(handler, Delivery(json.dumps(first).encode(), routing_key="agent:main:telegram:peer:100"))
    [recorded] = publisher.outcomes
    at = recorded.replies[0].occurred_at
    await store.prune_outcomes(at.replace(year=3000))
    # As the previous version kept it: under the bare event id, with no fingerprint.
    legacy = recorded.model_copy(update={"replies": (recorded.replies[0].model_copy(update={"text": "old"}),)})
    await store.save_outcome("c1", legacy.model_dump_json(), at, None)

    same_chat = Delivery(json.dumps(first).encode(), routing_key="agent:main:telegram:peer:100", redelivered=True)
    second = {**command, "source": {"channel": "telegram", "peerId": "200"}}
    other_chat = Delivery(json.dumps(second).encode(), routing_key="agent:main:telegram:peer:200")
    await deliver(handler, same_chat)
    await deliver(handler, other_chat)
    replayed, fresh = publisher.outcomes[1].replies[0], publisher.outcomes[2].replies[0]
    assert replayed.text == "old"  # the previous version's record, re-published as it was
    assert fresh.delivery.to == "200" and fresh.text != "old"
