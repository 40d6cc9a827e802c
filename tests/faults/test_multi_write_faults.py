"""Events whose handling makes several store writes, with a fault after one of them: the retry
publishes what a fault-free run does (each test's `None` case is that run) and leaves the same state.

A fault here is StoreUnavailable from one store call, as a full disk or a lost connection raises;
the handler retries in place. A SIGKILL leaves the same store behind for the redelivery."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

import pytest

from schemas import SessionEntry
from schemas.events import ChatSource, CommandEvent, InboundMessage, MarkImportant, RetentionDue, SessionResume
from schemas.topology import HEADER_FORWARDED
from tests.support.failing_store import FailingOnce, fault_rig
from tests.support.fakes import SCHEDULER_USER, Delivery, RecordingPublisher, delivery_of
from worker.amqp.consumer import EventHandler
from worker.engine.clock import ManualClock
from worker.service.processor import ordering_key
from worker.sessions.manager import SessionManager
from worker.stores.base import SessionStore

SOURCE = ChatSource(channel="telegram", peer_id="1", user_id="1", account_id="bot")
OTHER = ChatSource(channel="discord", peer_id="2", user_id="2", account_id="bot")


async def _deliver(handler: EventHandler, publisher: RecordingPublisher, delivery: Delivery) -> Delivery:
    """Deliver, following forwards to the slot's shard as the broker would."""
    for _ in range(4):
        before = len(publisher.forwarded)
        await handler.handle(cast(Any, delivery))
        if len(publisher.forwarded) == before:
            return delivery
        hops = int(delivery.headers.get(HEADER_FORWARDED, 0)) + 1
        delivery = Delivery(delivery.body, routing_key=publisher.forwarded[-1], message_id=delivery.message_id)
        delivery.headers[HEADER_FORWARDED] = hops
    return delivery


def _chat(event_id: str, text: str, source: ChatSource = SOURCE, routing: str | None = None) -> Delivery:
    event = InboundMessage(event_id=event_id, source=source, text=text)
    return delivery_of(event.model_dump(mode="json", by_alias=True), routing or ordering_key("main", source))


def _texts(publisher: RecordingPublisher, start: int = 0) -> list[tuple[str, str, str | None]]:
    out: list[tuple[str, str, str | None]] = []
    for outcome in publisher.outcomes[start:]:
        out += [("reply", r.kind + ": " + r.text, r.session_id) for r in outcome.replies]
        out += [("notice", n.kind + ": " + n.text, n.session_id) for n in outcome.notices]
    return out


async def _slot(manager: SessionManager, source: ChatSource = SOURCE) -> SessionEntry:
    return await manager.get_or_create_session(
        user_id=source.user_id, channel_id=source.channel, peer_id=source.peer_id, account_id=source.account_id
    )


async def _armed(
    failing: FailingOnce, fault: str | None, handler: EventHandler, publisher: RecordingPublisher, delivery: Delivery
) -> list[tuple[str, str, str | None]]:
    start = len(publisher.outcomes)
    failing.armed = fault
    done = await _deliver(handler, publisher, delivery)
    assert failing.armed is None and (fault is None or failing.tripped)
    assert done.acks == 1
    return _texts(publisher, start)


# /new and /reset: the reply still names the archived session (its undo hint).
@pytest.mark.parametrize("fault", [None, "insert_session", "save_outcome"])
@pytest.mark.parametrize("command", ["/new", "/reset"])
async def test_new_after_fault(store: SessionStore, clock: ManualClock, fault: str | None, command: str) -> None:
    failing, manager, publisher, handler = fault_rig(store, clock)
    await _deliver(handler, publisher, _chat("m1", "hi"))
    old = await _slot(manager)
    clock.advance(timedelta(minutes=1))
    published = await _armed(failing, fault, handler, publisher, _chat("n1", command))
    new = await _slot(manager)
    verb = "New session started" if command == "/new" else "Session reset; new session"
    assert published == [
        (
            "reply",
            f"command-result: {verb}: {new.id}. Send /session resume to go back to the previous session ({old.id}).",
            new.id,
        )
    ]


# /session resume (command): a retry after the current session's archive resumes the same target,
# not the session its first attempt archived.
@pytest.mark.parametrize("fault", [None, "reactivate_session", "save_outcome"])
async def test_session_resume_command_after_fault(store: SessionStore, clock: ManualClock, fault: str | None) -> None:
    failing, manager, publisher, handler = fault_rig(store, clock)
    await _deliver(handler, publisher, _chat("m1", "hi"))
    s1 = await _slot(manager)
    clock.advance(timedelta(minutes=1))
    await _deliver(handler, publisher, _chat("n1", "/new"))
    clock.advance(timedelta(minutes=1))
    await _deliver(handler, publisher, _chat("m2", "after the reset"))
    s2 = await _slot(manager)
    clock.advance(timedelta(minutes=1))
    published = await _armed(failing, fault, handler, publisher, _chat("r1", "/session resume"))
    assert published == [
        (
            "reply",
            f"command-result: Resumed session {s1.id} (2 messages). 1 message since the reset added at its end;"
            f" session {s2.id} is kept: /session resume {s2.id} switches back.",
            s1.id,
        )
    ]
    assert (await _slot(manager)).id == s1.id
    assert [e.content for e in await manager.get_history(s1.id)] == ["hi", "after the reset"]


# session.resume event: a retry after the archive still carries what arrived since the reset.
@pytest.mark.parametrize("fault", [None, "reactivate_session", "save_outcome"])
async def test_session_resume_event_after_fault(store: SessionStore, clock: ManualClock, fault: str | None) -> None:
    failing, manager, publisher, handler = fault_rig(store, clock)
    await _deliver(handler, publisher, _chat("m1", "hi"))
    s1 = await _slot(manager)
    clock.advance(timedelta(minutes=1))
    await _deliver(handler, publisher, _chat("n1", "/new"))
    clock.advance(timedelta(minutes=1))
    await _deliver(handler, publisher, _chat("m2", "after the reset"))
    clock.advance(timedelta(minutes=1))
    event = SessionResume(event_id="res-1", session_id=s1.id)
    delivery = delivery_of(event.model_dump(mode="json", by_alias=True), s1.key)
    published = await _armed(failing, fault, handler, publisher, delivery)
    notice = f"Session {s1.id} resumed (1 message since the reset added)."
    assert published == [("reply", "notice: " + notice, s1.id), ("notice", "session-resumed: " + notice, s1.id)]
    assert [e.content for e in await manager.get_history(s1.id)] == ["hi", "after the reset"]


# A retried resume that had no current session to replace carries nothing, not an earlier
# resume's replaced session.
@pytest.mark.parametrize("fault", [None, "save_outcome"])
async def test_resume_with_no_current_session_retried(
    store: SessionStore, clock: ManualClock, fault: str | None
) -> None:
    failing, manager, publisher, handler = fault_rig(store, clock)
    await _deliver(handler, publisher, _chat("m1", "one"))
    s1 = await _slot(manager)
    clock.advance(timedelta(minutes=1))
    await _deliver(handler, publisher, _chat("n1", "/new"))
    await _deliver(handler, publisher, _chat("m2", "two"))
    s2 = await _slot(manager)
    clock.advance(timedelta(minutes=1))
    await _deliver(handler, publisher, _chat("n2", "/new"))
    await _deliver(handler, publisher, _chat("m3", "three"))
    s3 = await _slot(manager)
    clock.advance(timedelta(minutes=1))
    await _deliver(handler, publisher, _chat("r1", f"/session resume {s1.id}"))  # s3 archived resumed-other
    clock.advance(timedelta(minutes=1))
    current = await _slot(manager)
    assert current.id == s1.id
    assert await manager.store.archive_session(s1.id, "idle", clock(), by="the scheduler")  # no active session now
    clock.advance(timedelta(minutes=1))
    published = await _armed(failing, fault, handler, publisher, _chat("r2", f"/session resume {s2.id}"))
    assert published == [("reply", f"command-result: Resumed session {s2.id} (1 message).", s2.id)]
    assert [e.content for e in await manager.get_history(s2.id)] == ["two"]  # faulted: ["two", "three"]
    assert (await manager.get_session(s3.id)).status == "archived"


# /session scope: a retry after the archives reports them and tells each chat.
@pytest.mark.parametrize("fault", [None, "save_outcome"])
async def test_scope_change_after_fault(store: SessionStore, clock: ManualClock, fault: str | None) -> None:
    failing, manager, publisher, handler = fault_rig(store, clock)
    await manager.agents.update("main", scope="per-channel-peer", admins=("telegram:1",))
    await _deliver(handler, publisher, _chat("m1", "hi"))
    await _deliver(handler, publisher, _chat("m2", "hi", OTHER))
    command = CommandEvent(event_id="sc1", source=SOURCE, command="/session scope main")
    delivery = delivery_of(command.model_dump(mode="json", by_alias=True), ordering_key("main", SOURCE))
    published = await _armed(failing, fault, handler, publisher, delivery)
    kinds = [(kind, text.split(":")[0]) for kind, text, _ in published]
    assert published[0][1] == (
        "command-result: Session scope is now main; 2 sessions that no longer fit it archived (kept)."
    )
    assert sorted(kinds).count(("notice", "scope-change")) == 2


# /checkpoint delete: a retry after the delete answers "deleted", not "no checkpoint".
@pytest.mark.parametrize("fault", [None, "delete_checkpoint", "save_outcome"])
async def test_checkpoint_delete_after_fault(store: SessionStore, clock: ManualClock, fault: str | None) -> None:
    failing, manager, publisher, handler = fault_rig(store, clock)
    await _deliver(handler, publisher, _chat("m1", "hi"))
    await _deliver(handler, publisher, _chat("c1", '/checkpoint save "x"'))
    session = await _slot(manager)
    (checkpoint,) = await manager.list_checkpoints(session.id)
    published = await _armed(failing, fault, handler, publisher, _chat("d1", f"/checkpoint delete {checkpoint.id}"))
    assert published == [("reply", f"command-result: Checkpoint {checkpoint.id} deleted.", session.id)]
    assert await manager.list_checkpoints(session.id) == []


# session.retention: a retry after the delete still publishes the deletion's notice.
@pytest.mark.parametrize("fault", [None, "delete_sessions", "save_outcome"])
async def test_retention_delete_after_fault(store: SessionStore, clock: ManualClock, fault: str | None) -> None:
    failing, manager, publisher, handler = fault_rig(store, clock)
    await manager.agents.update("main", retention={"keep_minimum": 0})
    await _deliver(handler, publisher, _chat("m1", "hi"))
    session = await _slot(manager)
    clock.advance(timedelta(days=31))
    event = RetentionDue(event_id="ret-1", session_id=session.id, rule="max_inactive")
    control = delivery_of(event.model_dump(mode="json", by_alias=True), session.key)
    control.user_id = SCHEDULER_USER
    published = await _armed(failing, fault, handler, publisher, control)
    assert published == [
        ("notice", f"retention-deleted: session {session.id} deleted by retention (max_inactive): 1 entry", session.id)
    ]
    assert await manager.store.get_session(session.id) is None


# entry.important: a store fault is waited out, never dead-lettered as "not-found".
@pytest.mark.parametrize("fault", [None, "set_important"])
async def test_mark_important_store_fault_is_retried(
    store: SessionStore, clock: ManualClock, fault: str | None
) -> None:
    failing, manager, publisher, handler = fault_rig(store, clock)
    await _deliver(handler, publisher, _chat("m1", "hi"))
    session = await _slot(manager)
    event = MarkImportant(event_id="i1", session_id=session.id, seq=1)
    failing.armed = fault
    done = await _deliver(handler, publisher, delivery_of(event.model_dump(mode="json", by_alias=True), session.key))
    assert done.acks == 1 and failing.armed is None
    assert publisher.dead == []
    assert (await manager.get_history(session.id))[0].important


async def test_mark_important_on_another_agents_session_is_refused(store: SessionStore, clock: ManualClock) -> None:
    _, manager, publisher, handler = fault_rig(store, clock)
    await _deliver(handler, publisher, _chat("m1", "hi"))
    session = await _slot(manager)
    event = MarkImportant(event_id="i1", agent_id="other", session_id=session.id, seq=1)
    await _deliver(handler, publisher, delivery_of(event.model_dump(mode="json", by_alias=True), session.key))
    assert [reason for reason, _ in publisher.dead] == ["unknown-session"]
    assert not (await manager.get_history(session.id))[0].important
