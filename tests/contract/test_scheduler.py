"""Scheduler sweeps with a controllable clock, applied through the worker's event processor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scheduler.sweeps import Sweeper
from schemas import ResetPolicy, RetentionPolicy
from schemas.events import EventBase, RetentionDue, SessionResetDue
from tests.conftest import MakeManager
from tests.support.fakes import SCHEDULER_USER, Delivery, RecordingPublisher, deliver, handler_for
from worker.engine.clock import ManualClock
from worker.engine.outcome import Outcome
from worker.service.processor import EventProcessor
from worker.sessions.manager import SessionManager
from worker.stores.base import RecordedOutcome


class Pipeline:
    """Sweeper -> events -> processor, with the outcome de-duplication the consumer does."""

    def __init__(self, manager: SessionManager, clock: ManualClock) -> None:
        self.events: list[tuple[EventBase, str]] = []
        self.outcomes: dict[str, Outcome] = {}
        self.processor = EventProcessor(manager, clock)
        self.sweeper = Sweeper(manager.store, manager.agents, clock, self.emit)

    async def emit(self, event: EventBase, routing_key: str) -> None:
        self.events.append((event, routing_key))

    async def apply_all(self) -> list[Outcome]:
        applied = []
        for event, _ in self.events:
            if event.event_id in self.outcomes:
                continue
            assert isinstance(event, SessionResetDue | RetentionDue)
            outcome = await self.processor.apply(event)
            self.outcomes[event.event_id] = outcome
            applied.append(outcome)
        self.events.clear()
        return applied


async def _session(manager: SessionManager, user: str, agent: str = "main") -> str:
    session = await manager.get_or_create_session(user_id=user, channel_id="telegram", agent_id=agent)
    await manager.add_message(session.id, "user", "hi")
    return session.id


async def test_daily_reset_in_the_agents_zone_across_dst(make_manager: MakeManager, clock: ManualClock) -> None:
    clock.set(datetime(2026, 3, 28, 12, 0, tzinfo=UTC))  # the day before Berlin springs forward
    manager = make_manager(reset_policy=ResetPolicy(mode="daily", daily_at="02:30", time_zone="Europe/Berlin"))
    pipeline = Pipeline(manager, clock)
    sid = await _session(manager, "u1")
    clock.set(datetime(2026, 3, 29, 1, 29, tzinfo=UTC))  # 03:29 CEST: 02:30 did not exist; boundary is 03:30
    assert (await pipeline.sweeper.reset_sweep()).emitted == 0
    clock.set(datetime(2026, 3, 29, 1, 31, tzinfo=UTC))
    report = await pipeline.sweeper.reset_sweep()
    assert (report.examined, report.emitted) == (1, 1)
    [(event, key)] = pipeline.events
    assert (
        isinstance(event, SessionResetDue) and event.reason == "daily" and key == (await manager.get_session(sid)).key
    )
    [outcome] = await pipeline.apply_all()
    assert (
        outcome.notices[0].text
        == "session reset: daily at 02:30 Europe/Berlin. Send /session resume to go back to the previous session."
    )
    assert outcome.replies[0].kind == "notice" and outcome.replies[0].delivery.channel == "telegram"
    assert (await manager.get_session(sid)).archived_reason == "daily"
    assert (await pipeline.sweeper.reset_sweep()).emitted == 0  # archived sessions are not swept again


async def test_idle_and_whichever_first_and_off(make_manager: MakeManager, clock: ManualClock) -> None:
    idle = make_manager(reset_policy=ResetPolicy(mode="daily+idle", daily_at="23:00", idle_minutes=30))
    pipeline = Pipeline(idle, clock)
    quiet = await _session(idle, "quiet")
    clock.advance(timedelta(minutes=20))
    busy = await _session(idle, "busy")
    clock.advance(timedelta(minutes=10))  # quiet idle for exactly 30 minutes, busy for 10
    await pipeline.sweeper.reset_sweep()
    assert [e.session_id for e, _ in pipeline.events] == [quiet]  # type: ignore[attr-defined]
    await pipeline.apply_all()
    assert (await idle.get_session(quiet)).archived_reason == "idle"
    assert (await idle.get_session(busy)).status == "active"

    await idle.agents.update("main", reset={"mode": "off"})
    clock.advance(timedelta(days=3))
    assert (await pipeline.sweeper.reset_sweep()).emitted == 0


async def test_reset_event_for_a_session_active_again_is_a_no_op(make_manager: MakeManager, clock: ManualClock) -> None:
    manager = make_manager(idle_reset_minutes=30)
    pipeline = Pipeline(manager, clock)
    sid = await _session(manager, "u1")
    clock.advance(timedelta(minutes=31))
    await pipeline.sweeper.reset_sweep()
    await manager.add_message(sid, "user", "I'm back")  # lands before the reset event is applied
    [outcome] = await pipeline.apply_all()
    assert outcome == Outcome()
    assert (await manager.get_session(sid)).status == "active"


async def test_two_schedulers_reset_and_delete_once(make_manager: MakeManager, clock: ManualClock) -> None:
    manager = make_manager(
        idle_reset_minutes=10, retention=RetentionPolicy(max_age="90d", max_inactive="30d", keep_minimum=0)
    )
    first, second = Pipeline(manager, clock), Pipeline(manager, clock)
    second.outcomes = first.outcomes  # both feed the same workers, which remember outcomes by event id
    stale = await _session(manager, "stale")
    clock.advance(timedelta(days=31))
    fresh = await _session(manager, "fresh")
    for pipeline in (first, second):
        await pipeline.sweeper.reset_sweep()
        await pipeline.sweeper.retention_sweep()
    ids = [e.event_id for e, _ in first.events]
    assert ids == [e.event_id for e, _ in second.events]  # same events, same ids
    first.events.extend(second.events)
    outcomes = await first.apply_all()
    notices = [n for o in outcomes for n in o.notices]
    assert sorted(n.kind for n in notices) == ["retention-deleted", "session-reset"]
    assert [s.id for s in (await manager.list_sessions()).items] == [fresh]
    assert stale not in {s.id for s in (await manager.list_sessions(status="archived")).items}


async def test_retention_rules_keep_minimum_and_warn(make_manager: MakeManager, clock: ManualClock) -> None:
    policy = RetentionPolicy(max_age="90d", max_inactive="30d", keep_minimum=1)
    manager = make_manager(retention=policy)
    pipeline = Pipeline(manager, clock)
    old_a = await _session(manager, "a")
    old_b = await _session(manager, "b")
    aged = await _session(manager, "c")
    clock.advance(timedelta(days=95))
    await manager.add_message(aged, "user", "still here")  # active, but created 95 days ago: past max_age
    clock.advance(timedelta(minutes=1))
    newest = await _session(manager, "new")
    other_agent = await _session(manager, "x", agent="helper")
    cp = await manager.save_checkpoint(old_a, "goes with its session")

    report = await pipeline.sweeper.retention_sweep()
    due = sorted((e.session_id, e.rule) for e, _ in pipeline.events)  # type: ignore[attr-defined]
    assert due == sorted([(old_a, "max_inactive"), (old_b, "max_inactive"), (aged, "max_age")])
    assert report.kept_minimum == 2  # the newest session of each agent: main and helper
    await pipeline.apply_all()
    assert [s.id for s in (await manager.list_sessions(agent_id="main", limit=100)).items] == [newest]
    assert [s.id for s in (await manager.list_sessions(agent_id="helper")).items] == [other_agent]
    assert await manager.store.get_checkpoint(cp.id) is None  # deleted together with its session
    assert await manager.store.read_entries(old_a, 1, 10, 10) == []

    await manager.agents.update("main", retention={"mode": "warn", "keep_minimum": 0})
    clock.advance(timedelta(days=31))
    await pipeline.sweeper.retention_sweep()
    outcomes = await pipeline.apply_all()
    assert {n.kind for o in outcomes for n in o.notices} == {"retention-warning"}
    assert [s.id for s in (await manager.list_sessions(agent_id="main", limit=100)).items] == [newest]


async def test_old_outcomes_are_pruned(manager: SessionManager, clock: ManualClock) -> None:
    pipeline = Pipeline(manager, clock)
    await manager.store.save_outcome("old", "{}", clock(), None)
    clock.advance(timedelta(hours=80))
    await manager.store.save_outcome("new", "{}", clock(), "f1")
    report = await pipeline.sweeper.prune_outcomes(timedelta(hours=72))
    assert report.emitted == 1
    assert await manager.store.get_outcome("old") is None
    assert await manager.store.get_outcome("new") == RecordedOutcome("{}", "f1")


async def test_a_retention_warning_is_given_once_until_the_session_changes(
    make_manager: MakeManager, clock: ManualClock
) -> None:
    manager = make_manager()
    await manager.agents.update("main", retention={"mode": "warn", "keep_minimum": 0})
    session = await manager.get_or_create_session(user_id="u", channel_id="telegram")
    await manager.add_message(session.id, "user", "hello")
    publisher = RecordingPublisher()
    handler = handler_for(manager, publisher, clock=clock)

    async def apply(event: EventBase, key: str) -> None:
        body = event.model_dump_json(by_alias=True).encode()
        await deliver(handler, Delivery(body, routing_key=key, user_id=SCHEDULER_USER))

    sweeper = Sweeper(manager.store, manager.agents, clock, apply)
    clock.advance(timedelta(days=31))
    first = await sweeper.retention_sweep()
    second = await sweeper.retention_sweep()
    warnings = [n for o in publisher.outcomes for n in o.notices if n.kind == "retention-warning"]
    assert (first.emitted, second.emitted, len(warnings)) == (1, 0, 1)
    await manager.add_message(session.id, "user", "back again")  # the session changed: warned anew
    clock.advance(timedelta(days=31))
    assert (await sweeper.retention_sweep()).emitted == 1
