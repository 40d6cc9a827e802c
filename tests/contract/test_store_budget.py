"""Retention with a store budget: over max_store_bytes, the longest-inactive sessions go until the
agent is under its high-water mark, never below keep_minimum; warn mode only reports."""

from __future__ import annotations

from datetime import timedelta

from scheduler.sweeps import Sweeper
from schemas.events import EventBase
from tests.conftest import MakeManager
from tests.support.fakes import SCHEDULER_USER, Delivery, RecordingPublisher, deliver, handler_for
from worker.engine.clock import ManualClock
from worker.sessions.manager import SessionManager


async def _fill(manager: SessionManager, clock: ManualClock, count: int) -> list[str]:
    """`count` sessions of about 1 KB each, the first the longest inactive."""
    ids = []
    for index in range(count):
        session = await manager.get_or_create_session(user_id=f"u{index}", channel_id="telegram")
        await manager.add_message(session.id, "user", "x" * 1000)
        ids.append(session.id)
        clock.advance(timedelta(minutes=1))
    return ids


async def test_the_scheduler_brings_an_agent_under_its_budget(make_manager: MakeManager, clock: ManualClock) -> None:
    manager = make_manager()
    ids = await _fill(manager, clock, 10)
    per_session = (await manager.get_session(ids[0])).stored_bytes
    assert per_session >= 1000 and await manager.store.agent_stored_bytes("main") == 10 * per_session
    # Budget for 6 sessions, high water at 5: the 5 longest inactive go; keep_minimum would stop at 3.
    await manager.agents.update(
        "main", retention={"max_store_bytes": 6 * per_session, "store_high_water": 5 / 6, "keep_minimum": 3}
    )
    publisher = RecordingPublisher()
    handler = handler_for(manager, publisher, clock=clock)

    async def apply(event: EventBase, key: str) -> None:
        body = event.model_dump_json(by_alias=True).encode()
        await deliver(handler, Delivery(body, routing_key=key, user_id=SCHEDULER_USER))

    report = await Sweeper(manager.store, manager.agents, clock, apply).retention_sweep()
    left = {s.id for s in (await manager.list_sessions(limit=50)).items}
    assert report.emitted == 5 and left == set(ids[5:])  # exactly the oldest five went, the newest stay
    assert not publisher.dead and await manager.store.agent_stored_bytes("main") == 5 * per_session
    assert (await Sweeper(manager.store, manager.agents, clock, apply).retention_sweep()).emitted == 0


async def test_keep_minimum_wins_over_the_budget_and_warn_mode_reports(
    make_manager: MakeManager, clock: ManualClock
) -> None:
    manager = make_manager()
    ids = await _fill(manager, clock, 4)
    await manager.agents.update("main", retention={"max_store_bytes": 100, "keep_minimum": 3, "mode": "warn"})
    preview = await manager.cleanup_budget(dry_run=True)
    assert preview.session_ids == (ids[0],) and preview.entries == 1
    emitted: list[EventBase] = []

    async def keep(event: EventBase, key: str) -> None:
        emitted.append(event)

    await Sweeper(manager.store, manager.agents, clock, keep).retention_sweep()
    assert [(getattr(e, "session_id", None), getattr(e, "mode", None)) for e in emitted] == [(ids[0], "warn")]
    await manager.agents.update("main", retention={"mode": "enforce"})
    done = await manager.cleanup_budget()
    assert done.sessions == 1 and {s.id for s in (await manager.list_sessions(limit=10)).items} == set(ids[1:])
