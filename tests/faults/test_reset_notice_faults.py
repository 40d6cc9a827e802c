"""A reset is announced even when a store fault cuts short the attempt that made it.

The event that archives a session for a daily or idle reset is named on it (`archived_by`); the
retry after a fault (a full disk, a lost connection, a worker killed) finds that reset and sends
the notice the first attempt could not. On both stores, for a chat message and a scheduler event."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from schemas import ResetPolicy
from schemas.events import ChatSource, InboundMessage, SessionResetDue
from tests.support.failing_store import fault_rig
from tests.support.fakes import SCHEDULER_USER, Delivery, RecordingPublisher, delivery_of
from worker.engine.clock import ManualClock
from worker.service.processor import ordering_key
from worker.stores.base import SessionStore
from worker.stores.sqlite import ARCHIVED_BY_SQL, SqliteStore

SOURCE = ChatSource(channel="telegram", peer_id="7", user_id="7")
IDLE = ResetPolicy(mode="idle", idle_minutes=30)


def _message(event_id: str, text: str = "hi") -> Delivery:
    event = InboundMessage(event_id=event_id, source=SOURCE, text=text)
    return delivery_of(event.model_dump(mode="json", by_alias=True), ordering_key("main", SOURCE))


def _notices(publisher: RecordingPublisher, kind: str) -> list[str]:
    return [notice.text for outcome in publisher.outcomes for notice in outcome.notices if notice.kind == kind]


# insert_session: after the archive, before the new session; append_entry: after both; save_outcome:
# after the append, before the outcome (with its notice) is recorded.
@pytest.mark.parametrize("fault", ["insert_session", "append_entry", "save_outcome"])
async def test_a_message_that_found_its_session_idle_announces_the_reset_after_a_fault(
    store: SessionStore, clock: ManualClock, fault: str
) -> None:
    failing, manager, publisher, handler = fault_rig(store, clock, reset_policy=IDLE)
    await handler.handle(cast(Any, _message("m1")))
    old = await manager.get_or_create_session(user_id="7", channel_id="telegram", peer_id="7")
    clock.advance(timedelta(minutes=45))
    failing.armed = fault
    delivery = _message("m2")
    await handler.handle(cast(Any, delivery))
    assert failing.armed is None and delivery.acks == 1  # the fault struck, and the retry went through
    assert _notices(publisher, "session-reset") == [
        "session reset: idle for 30 min. Send /session resume to go back to the previous session."
    ]
    assert (await manager.get_session(old.id)).archived_reason == "idle"
    await handler.handle(cast(Any, _message("m3")))  # the next message hears nothing more of it
    assert len(_notices(publisher, "session-reset")) == 1
    new = await manager.get_or_create_session(user_id="7", channel_id="telegram", peer_id="7")
    assert [e.content for e in await manager.get_history(new.id)] == ["hi", "hi"]


@pytest.mark.parametrize("fault", [None, "insert_session", "save_outcome"])
async def test_a_command_that_found_its_session_idle_announces_the_reset(
    store: SessionStore, clock: ManualClock, fault: str | None
) -> None:
    failing, manager, publisher, handler = fault_rig(store, clock, reset_policy=IDLE)
    await handler.handle(cast(Any, _message("m1")))
    clock.advance(timedelta(minutes=45))
    failing.armed = fault
    await handler.handle(cast(Any, _message("c1", "/checkpoint save before-lunch")))  # opens the session
    assert failing.armed is None
    assert len(_notices(publisher, "session-reset")) == 1
    (result,) = [r.text for o in publisher.outcomes for r in o.replies if r.kind == "command-result"]
    new = await manager.get_or_create_session(user_id="7", channel_id="telegram", peer_id="7")
    (checkpoint,) = await manager.list_checkpoints(new.id)
    assert result == f"Checkpoint {checkpoint.id} saved: before-lunch (0 messages)."
    await handler.handle(cast(Any, _message("m2")))
    assert len(_notices(publisher, "session-reset")) == 1


async def test_a_command_that_fails_after_its_session_was_reset_still_announces_the_reset(
    store: SessionStore, clock: ManualClock
) -> None:
    _, _, publisher, handler = fault_rig(store, clock, reset_policy=IDLE)
    await handler.handle(cast(Any, _message("m1")))
    clock.advance(timedelta(minutes=45))
    await handler.handle(cast(Any, _message("c1", "/checkpoint restore cp_nope")))  # opens, then fails
    assert len(_notices(publisher, "session-reset")) == 1
    assert [r.kind for o in publisher.outcomes for r in o.replies] == ["notice", "error"]


async def test_a_retry_held_up_past_the_idle_limit_keeps_the_session_it_opened(
    store: SessionStore, clock: ManualClock
) -> None:
    failing, manager, publisher, handler = fault_rig(store, clock, reset_policy=IDLE)
    await handler.handle(cast(Any, _message("m1")))
    old = await manager.get_or_create_session(user_id="7", channel_id="telegram", peer_id="7")
    clock.advance(timedelta(minutes=45))
    failing.armed = "append_entry"  # reset and opened, then the store fails for longer than the idle limit
    failing.outage = lambda: clock.advance(timedelta(minutes=45))
    await handler.handle(cast(Any, _message("m2")))
    resets = [n for o in publisher.outcomes for n in o.notices if n.kind == "session-reset"]
    assert [n.session_id for n in resets] == [old.id]  # the reset it made, not one of its own session
    session = await manager.get_or_create_session(user_id="7", channel_id="telegram", peer_id="7")
    assert session.generation == 2 and session.message_count == 1  # m2, in the session it opened


async def test_a_scheduled_reset_is_announced_after_a_fault(store: SessionStore, clock: ManualClock) -> None:
    failing, manager, publisher, handler = fault_rig(store, clock, reset_policy=IDLE)
    await handler.handle(cast(Any, _message("m1")))
    session = await manager.get_or_create_session(user_id="7", channel_id="telegram", peer_id="7")
    clock.advance(timedelta(minutes=45))
    event = SessionResetDue(event_id="reset-1", session_id=session.id, reason="idle", due_at=clock())
    control = delivery_of(event.model_dump(mode="json", by_alias=True), session.key)
    control.user_id = SCHEDULER_USER
    failing.armed = "save_outcome"  # archived, then the record of its notice fails
    await handler.handle(cast(Any, control))
    assert failing.armed is None and control.acks == 1
    assert (await manager.get_session(session.id)).archived_reason == "idle"
    assert len(_notices(publisher, "session-reset")) == 1
    await handler.handle(cast(Any, _message("m2")))  # the reset was announced already: not again
    assert len(_notices(publisher, "session-reset")) == 1


async def test_a_reset_the_scheduler_made_is_not_announced_again_by_the_next_message(
    store: SessionStore, clock: ManualClock
) -> None:
    _, manager, publisher, handler = fault_rig(store, clock, reset_policy=IDLE)
    await handler.handle(cast(Any, _message("m1")))
    session = await manager.get_or_create_session(user_id="7", channel_id="telegram", peer_id="7")
    clock.advance(timedelta(minutes=45))
    assert await manager.store.archive_session(session.id, "idle", clock(), by="another event")
    await handler.handle(cast(Any, _message("m2")))
    assert _notices(publisher, "session-reset") == []


async def test_an_older_sqlite_store_gains_the_column_at_start_up(tmp_path: Path, clock: ManualClock) -> None:
    store = SqliteStore.at_path(str(tmp_path / "old.db"))
    await store.ensure_schema()

    def as_version_3_left_it(conn: sqlite3.Connection) -> None:
        conn.execute("DROP INDEX sessions_archived_by")
        conn.execute("ALTER TABLE sessions DROP COLUMN archived_by")
        conn.execute("PRAGMA user_version = 3")

    await store._db.write(as_version_3_left_it, alone=True)
    await store.ensure_schema()
    manager = fault_rig(store, clock, reset_policy=IDLE).manager
    session = await manager.get_or_create_session(user_id="7", channel_id="telegram", peer_id="7")
    assert await manager.store.archive_session(session.id, "idle", clock(), by="evt")
    assert (await manager.get_session(session.id)).archived_by == "evt"
    assert [s.id for s in await store.archived_by("evt")] == [session.id]
    plan = await store._db.read(lambda conn: conn.execute(f"EXPLAIN QUERY PLAN {ARCHIVED_BY_SQL}", ("evt",)).fetchall())
    assert "sessions_archived_by" in str(plan)  # the migration made the index a retry looks with
    await manager.close()
