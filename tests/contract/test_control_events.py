"""Control events (session.reset, session.retention): accepted only from the scheduler's broker
user, and re-checked against the store when applied, so a forged or stale one changes nothing."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, cast

import pytest

from schemas import ResetPolicy, RetentionPolicy
from schemas.events import RetentionDue, SessionResetDue
from schemas.topology import HEADER_FORWARDED
from tests.conftest import MakeManager
from tests.support.fakes import SCHEDULER_USER, Delivery, RecordingPublisher, delivery_of, handler_for
from worker.commands.runner import is_admin
from worker.engine.clock import ManualClock
from worker.engine.outcome import Outcome
from worker.engine.scope import ChatAddress
from worker.service.processor import EventProcessor
from worker.sessions.manager import SessionManager

FORWARDED = {HEADER_FORWARDED: 1}
RETENTION = RetentionPolicy(max_age="90d", max_inactive="30d", keep_minimum=0)


async def _session(manager: SessionManager, user: str, agent: str = "main") -> str:
    session = await manager.get_or_create_session(user_id=user, channel_id="telegram", agent_id=agent)
    await manager.add_message(session.id, "user", "hi")
    return session.id


def _control(event: SessionResetDue | RetentionDue, user: str | None, key: str = "", **headers: Any) -> Delivery:
    """A delivery of `event` published by broker user `user`, under routing key `key`."""
    delivery = delivery_of(event.model_dump(mode="json", by_alias=True), key)
    delivery.user_id = user
    delivery.headers = dict(headers)
    return delivery


def _ignoring(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("ignoring ")]


@pytest.mark.parametrize(
    ("user", "headers"),
    [(None, {}), ("gateway", {}), ("gateway", {HEADER_FORWARDED: 1}), ("worker", {})],
    ids=["no-user-id", "gateway-user", "gateway-claiming-a-forward", "worker-not-forwarding"],
)
async def test_a_control_event_from_anyone_but_the_scheduler_is_dead_lettered_unauthorized(
    make_manager: MakeManager, clock: ManualClock, user: str | None, headers: dict[str, Any]
) -> None:
    manager = make_manager(retention=RETENTION)
    victim = await _session(manager, "victim")
    clock.advance(timedelta(days=365))  # past every rule: only the sender's identity stops it
    publisher = RecordingPublisher()
    handler = handler_for(manager, publisher, clock=clock)
    for event in (
        RetentionDue(event_id="forged-retention", session_id=victim, rule="max_age"),
        SessionResetDue(event_id="forged-reset", session_id=victim, reason="idle", due_at=clock()),
    ):
        delivery = _control(event, user, **headers)
        await handler.handle(cast(Any, delivery))
        assert delivery.acks == 1  # decided on its first delivery
    assert [reason for reason, _ in publisher.dead] == ["unauthorized", "unauthorized"]
    assert f"by broker user {user!r}" in publisher.dead[0][1] and repr(SCHEDULER_USER) in publisher.dead[0][1]
    assert publisher.outcomes == []
    session = await manager.get_session(victim)
    assert session.status == "active" and session.message_count == 1


async def test_the_schedulers_events_and_a_workers_forward_of_them_are_applied(
    make_manager: MakeManager, clock: ManualClock
) -> None:
    manager = make_manager(retention=RETENTION)
    old, older = await _session(manager, "old"), await _session(manager, "older")
    clock.advance(timedelta(days=91))
    publisher = RecordingPublisher()
    handler = handler_for(manager, publisher, clock=clock)
    keys = {sid: (await manager.get_session(sid)).key for sid in (old, older)}
    for delivery in (
        _control(RetentionDue(event_id="r1", session_id=old, rule="max_age"), SCHEDULER_USER, keys[old]),
        _control(RetentionDue(event_id="r2", session_id=older, rule="max_age"), "worker", keys[older], **FORWARDED),
    ):
        await handler.handle(cast(Any, delivery))
    assert publisher.dead == []
    assert [o.notices[0].kind for o in publisher.outcomes] == ["retention-deleted", "retention-deleted"]
    assert (await manager.list_sessions()).items == ()


async def test_retention_of_a_young_session_of_another_agent_or_a_kept_one_changes_nothing(
    make_manager: MakeManager, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    manager = make_manager(retention=RetentionPolicy(max_age="90d", max_inactive="30d", keep_minimum=1))
    processor = EventProcessor(manager, clock)
    young = await _session(manager, "young")
    clock.advance(timedelta(seconds=1))
    newest = await _session(manager, "newest")
    caplog.set_level(logging.INFO, logger="worker.service.control")
    forged = [
        RetentionDue(event_id="e1", session_id=young, rule="max_age"),  # one second old
        RetentionDue(event_id="e2", session_id=young, rule="max_inactive"),
        RetentionDue(event_id="e3", agent_id="other", session_id=young, rule="max_age"),
    ]
    for event in forged:
        assert await processor.apply(event) == Outcome()
    clock.advance(timedelta(days=91))  # now both are past both rules; keep_minimum keeps the newest
    assert await processor.apply(RetentionDue(event_id="e4", session_id=newest, rule="max_age")) == Outcome()
    messages = _ignoring(caplog)
    assert len(messages) == 4  # one line per event, each saying why
    assert "not past max_age (90d)" in messages[0] and "not past max_inactive (30d)" in messages[1]
    assert "belongs to agent 'main'" in messages[2] and "keep_minimum (1)" in messages[3]
    assert {s.id for s in (await manager.list_sessions()).items} == {young, newest}
    deleted = await processor.apply(RetentionDue(event_id="e5", session_id=young, rule="max_age"))
    assert [n.kind for n in deleted.notices] == ["retention-deleted"]
    assert [s.id for s in (await manager.list_sessions()).items] == [newest]


async def test_retention_in_warn_mode_never_deletes_whatever_the_event_says(
    make_manager: MakeManager, clock: ManualClock
) -> None:
    manager = make_manager(retention=RetentionPolicy(max_age="90d", max_inactive="30d", keep_minimum=0, mode="warn"))
    processor = EventProcessor(manager, clock)
    sid = await _session(manager, "u")
    clock.advance(timedelta(days=91))
    outcome = await processor.apply(RetentionDue(event_id="w1", session_id=sid, rule="max_age", mode="enforce"))
    assert [n.kind for n in outcome.notices] == ["retention-warning"]
    assert (await manager.get_session(sid)).status == "active"


async def test_a_reset_of_a_session_not_due_or_of_another_agent_changes_nothing(
    make_manager: MakeManager, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    manager = make_manager(reset_policy=ResetPolicy(mode="idle", idle_minutes=30))
    processor = EventProcessor(manager, clock)
    sid = await _session(manager, "u")
    caplog.set_level(logging.INFO, logger="worker.service.control")
    far_future = clock() + timedelta(days=365)  # a forged due time does not make it due
    assert await processor.apply(SessionResetDue(event_id="x1", session_id=sid, reason="idle", due_at=far_future)) == (
        Outcome()
    )
    clock.advance(timedelta(minutes=31))
    other = SessionResetDue(event_id="x2", agent_id="other", session_id=sid, reason="idle", due_at=clock())
    assert await processor.apply(other) == Outcome()
    assert len(_ignoring(caplog)) == 2
    assert (await manager.get_session(sid)).status == "active"
    due = await processor.apply(SessionResetDue(event_id="x3", session_id=sid, reason="idle", due_at=clock()))
    assert [n.kind for n in due.notices] == ["session-reset"]
    assert (await manager.get_session(sid)).archived_reason == "idle"


@pytest.mark.parametrize("channel", ["telegram", "Telegram", " TG ", "tg"])
async def test_admin_checks_normalize_the_channel(make_manager: MakeManager, channel: str) -> None:
    manager = make_manager(admins=("Telegram:admin", "tg:other"))
    settings = await manager.get_settings("main")
    assert is_admin(settings, ChatAddress(channel=channel, user_id=" admin "))
    assert is_admin(settings, ChatAddress(channel=channel, user_id="other"))
    assert not is_admin(settings, ChatAddress(channel="discord", user_id="admin"))
    assert not is_admin(settings, ChatAddress(channel=channel, user_id="nobody"))
