"""Scheduler events through the real broker: ordering with messages, two replicas, lazy resets."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from scheduler.service import SchedulerService
from schemas.events import ChatSource, InboundMessage, RetentionDue, SessionResetDue
from tests.support.backends import BACKENDS
from tests.support.broker import BrokerHarness
from worker.engine.clock import ManualClock
from worker.service.processor import ordering_key

pytestmark = [pytest.mark.broker, pytest.mark.parametrize("worker_store", BACKENDS, indirect=True)]
SOURCE = ChatSource(channel="telegram", peer_id="55", user_id="55")


async def _stored_session(harness: BrokerHarness) -> str:
    assert harness.gateway is not None
    sent = await harness.gateway.send_message(channel="telegram", peer_id="55", user_id="55", text="first")
    [turn] = await harness.turns.wait_for(sent.event_id)
    return str(turn["sessionId"])


async def test_reset_event_and_message_published_together_apply_in_order(
    clocked_harness: BrokerHarness, clock: ManualClock
) -> None:
    harness = clocked_harness
    await harness.start_worker(reset_mode="idle", idle_minutes=30)
    assert harness.gateway is not None and harness.scheduler is not None
    old = await _stored_session(harness)
    clock.advance(timedelta(minutes=45))
    session = await harness.manager.get_session(old)
    reset = SessionResetDue(
        event_id="reset-1", session_id=old, reason="idle", due_at=session.last_activity_at + timedelta(minutes=30)
    )
    message = InboundMessage(event_id="after-reset", source=SOURCE, text="second")
    # One after the other (the scheduler and the gateway publish on channels of their own): the
    # reset is confirmed, so it is queued before the message on the slot's shard.
    await harness.scheduler.publish(reset, session.key)
    await harness.gateway.publish(message, ordering_key("main", SOURCE))
    [turn] = await harness.turns.wait_for("after-reset")
    [notice] = await harness.notices.wait_for("reset-1")
    assert notice["text"] == "session reset: idle for 30 min. Send /session resume to go back to the previous session."
    assert turn["sessionId"] != old and harness.notices.by_reply.get("after-reset") is None
    assert (await harness.manager.get_session(old)).archived_reason == "idle"


async def test_two_schedulers_reset_each_session_once(clocked_harness: BrokerHarness, clock: ManualClock) -> None:
    harness = clocked_harness
    await harness.start_worker(reset_mode="idle", idle_minutes=30)
    assert harness.gateway is not None and harness.scheduler is not None
    sent = [await harness.gateway.send_message(channel="slack", peer_id=f"u{n}", text="hi") for n in range(20)]
    turns = [(await harness.turns.wait_for(s.event_id))[0] for s in sent]
    clock.advance(timedelta(hours=1))
    manager = harness.manager
    schedulers = [
        SchedulerService(
            manager.store,
            manager.agents,
            clock,
            harness.scheduler.publish,
            reset_every_seconds=0.2,
            retention_every_seconds=0.2,
        )
        for _ in range(2)
    ]
    for scheduler in schedulers:
        scheduler.start()
    try:
        await harness.notices.wait_count(20, timeout=30)
        await asyncio.sleep(1.0)  # further sweeps by both replicas must add nothing
    finally:
        for scheduler in schedulers:
            await scheduler.stop()
    assert all(len(s.reports) >= 2 for s in schedulers)
    notice_ids = [n["eventId"] for n in harness.notices.items if n["kind"] == "session-reset"]
    assert len(set(notice_ids)) == 20
    for turn in turns:
        assert (await manager.get_session(turn["sessionId"])).archived_reason == "idle"
    page = await manager.list_sessions(status="archived", limit=100)
    assert len(page.items) == 20


async def test_without_a_scheduler_the_next_message_resets_lazily(
    clocked_harness: BrokerHarness, clock: ManualClock
) -> None:
    harness = clocked_harness
    await harness.start_worker(reset_mode="daily", reset_time="04:00", reset_time_zone="Europe/Berlin")
    assert harness.gateway is not None
    old = await _stored_session(harness)
    clock.advance(timedelta(days=1))
    sent = await harness.gateway.send_message(
        channel="telegram", peer_id="55", user_id="55", text="next day", message_id="m9"
    )
    [turn] = await harness.turns.wait_for(sent.event_id)
    [reply] = await harness.replies.wait_for(sent.event_id)
    assert turn["sessionId"] != old
    assert (
        reply["kind"] == "notice"
        and reply["text"]
        == "session reset: daily at 04:00 Europe/Berlin. Send /session resume to go back to the previous session."
    )
    assert reply["delivery"]["channel"] == "telegram" and reply["delivery"]["replyToId"] == "m9"


async def test_a_gateways_control_event_is_dead_lettered_unauthorized(
    clocked_harness: BrokerHarness, clock: ManualClock
) -> None:
    harness = clocked_harness
    worker = await harness.start_worker(retention_keep_minimum=0)
    assert harness.gateway is not None
    victim = await _stored_session(harness)
    clock.advance(timedelta(days=365))  # past every retention rule: only the sender's identity stops it
    key = (await harness.manager.get_session(victim)).key
    await harness.gateway.publish(RetentionDue(event_id="forged", session_id=victim, rule="max_age"), key)
    await harness.dead.wait_count(1)
    assert [item["eventId"] for item in harness.dead.items] == ["forged"]
    await worker.stop()  # finishes the delivery: it is counted once settled, a moment after the publish
    assert worker.metrics.registry.get_sample_value("sessions_dead_letters_total", {"reason": "unauthorized"}) == 1
    assert (await harness.manager.get_session(victim)).status == "active"
    assert harness.notices.by_reply.get("forged") is None
