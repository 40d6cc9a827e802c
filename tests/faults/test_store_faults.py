"""Store and publish failures: retried with back-off, nothing acknowledged before it is stored.

MongoDB's own faults are injected over the wire: tests/faults/test_mongo_fail_points.py."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, cast

from schemas.events import ChatSource, CommandEvent, InboundMessage
from tests.support.fakes import Delivery, RecordingPublisher, delivery_of, handler_for
from worker import create_session_manager
from worker.engine.tokens import CharRatioCounter
from worker.service.processor import ordering_key
from worker.sessions.manager import SessionManager
from worker.stores.sqlite import SqliteStore

SOURCE = ChatSource(channel="telegram", peer_id="7", user_id="7")


def _delivery(event_id: str, text: str = "hello") -> Delivery:
    event = InboundMessage(event_id=event_id, source=SOURCE, text=text)
    return delivery_of(event.model_dump(mode="json", by_alias=True), ordering_key("main", SOURCE))


async def _history(manager: SessionManager) -> list[str | None]:
    session = await manager.get_or_create_session(user_id="7", channel_id="telegram", peer_id="7")
    return [entry.content for entry in await manager.get_history(session.id)]


async def test_sqlite_busy_is_retried_until_the_lock_is_released(tmp_path: Path) -> None:
    path = str(tmp_path / "busy.db")
    manager = create_session_manager(
        store=SqliteStore.at_path(path, busy_timeout_ms=50), token_counter=CharRatioCounter()
    )
    await manager.open()
    await manager.get_or_create_session(user_id="7", channel_id="telegram", peer_id="7")
    publisher = RecordingPublisher()
    handler = handler_for(manager, publisher)
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        locked.set()
        release.wait(5)
        conn.execute("COMMIT")
        conn.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    locked.wait(5)
    delivery = _delivery("m2")
    task = asyncio.create_task(handler.handle(cast(Any, delivery)))
    await asyncio.sleep(0.6)
    assert delivery.acks == 0 and not publisher.outcomes  # nothing acknowledged while the write cannot land
    release.set()
    await asyncio.wait_for(task, 10)
    holder.join()
    assert delivery.acks == 1 and len(publisher.outcomes) == 1
    assert await _history(manager) == ["hello"]
    await manager.close()


async def test_a_publish_failure_is_retried_without_a_second_effect(tmp_path: Path) -> None:
    manager = create_session_manager(db_path=str(tmp_path / "p.db"), token_counter=CharRatioCounter())
    await manager.open()
    publisher = RecordingPublisher(fail_next=2)
    handler = handler_for(manager, publisher)
    delivery = _delivery("m3")
    started = time.monotonic()
    await asyncio.wait_for(handler.handle(cast(Any, delivery)), 10)
    assert time.monotonic() - started >= 0.1  # backed off between attempts
    assert delivery.acks == 1 and [o.turns[0].event_id for o in publisher.outcomes] == [
        publisher.outcomes[0].turns[0].event_id
    ]
    redelivered = _delivery("m3")
    redelivered.redelivered = True
    await handler.handle(cast(Any, redelivered))
    # Rebuilt from the stored entry: the very same turn.
    assert redelivered.acks == 1 and publisher.outcomes[1] == publisher.outcomes[0]
    assert await _history(manager) == ["hello"]
    await manager.close()


async def test_recorded_outcomes_are_sealed_and_replayed_as_recorded(tmp_path: Path) -> None:
    """A command's reply is recorded (sealed: it is content) and a redelivery re-publishes it as is."""
    db = tmp_path / "o.db"
    manager = create_session_manager(
        db_path=str(db),
        token_counter=CharRatioCounter(),
        encrypt_transcripts=True,
        encryption_key="a passphrase that is long enough",
    )
    await manager.open()
    publisher = RecordingPublisher()
    handler = handler_for(manager, publisher)
    await handler.handle(cast(Any, _delivery("m4", "remember the blue door")))
    command = CommandEvent(event_id="c1", source=SOURCE, command="/history")
    first = delivery_of(command.model_dump(mode="json", by_alias=True), ordering_key("main", SOURCE))
    await handler.handle(cast(Any, first))
    await handler.handle(cast(Any, _delivery("m5", "and the red window")))  # /history would now differ
    again = delivery_of(command.model_dump(mode="json", by_alias=True), ordering_key("main", SOURCE))
    again.redelivered = True
    await handler.handle(cast(Any, again))
    replies = [o.replies[0] for o in publisher.outcomes if o.replies]
    assert len(replies) == 2 and replies[0] == replies[1] and "blue door" in (replies[0].text or "")
    await manager.close()
    with sqlite3.connect(db) as conn:
        docs = [row[0] for row in conn.execute("SELECT doc FROM outcomes")]
    assert len(docs) == 1 and docs[0].startswith("enc1:") and "blue door" not in docs[0]


class _CheckingPublisher(RecordingPublisher):
    """Notes, at each publish, how many outcome records another connection sees committed: what a
    redelivery would find, were the worker killed the moment the broker confirmed the publish."""

    def __init__(self, db: Path) -> None:
        super().__init__()
        self._db = db
        self.committed_at_publish: list[int] = []

    async def publish_outcome(self, outcome: Any) -> None:
        with sqlite3.connect(self._db) as conn:
            self.committed_at_publish.append(conn.execute("SELECT count(*) FROM outcomes").fetchone()[0])
        await super().publish_outcome(outcome)


async def test_a_commands_outcome_is_committed_before_it_is_published(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    manager = create_session_manager(db_path=str(db), token_counter=CharRatioCounter())
    await manager.open()
    publisher = _CheckingPublisher(db)
    handler = handler_for(manager, publisher)
    await handler.handle(cast(Any, _delivery("m6")))  # a chat message: not recorded (a replay rebuilds it)
    for n, command in enumerate(("/status", "/history", "/new")):
        event = CommandEvent(event_id=f"c{n}", source=SOURCE, command=command)
        body = event.model_dump(mode="json", by_alias=True)
        await handler.handle(cast(Any, delivery_of(body, ordering_key("main", SOURCE))))
    await manager.close()
    assert publisher.committed_at_publish == [0, 1, 2, 3]
