"""The store budget's sweep costs O(sessions touched), not O(store): bringing an agent under its
budget by two sessions does the same work (counted, not timed: tests/support/work_meter.py) on a
store of 200 sessions as on one of 20, and reads only the sessions it removes and keeps."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from scheduler.sweeps import Sweeper
from schemas.events import EventBase
from tests.support.backends import BACKENDS, server_of
from tests.support.fakes import SCHEDULER_USER, Delivery, RecordingPublisher, deliver, handler_for
from tests.support.work_meter import WorkMeter, metered_store
from worker import SessionManager, create_session_manager
from worker.engine.clock import ManualClock
from worker.engine.tokens import CharRatioCounter
from worker.stores.base import SessionStore

KEEP_MINIMUM = 3


@pytest.fixture(params=BACKENDS)
async def metered(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[SessionStore, WorkMeter]]:
    async with metered_store(request.param, tmp_path, server_of(request, request.param)) as opened:
        yield opened


async def _fill(manager: SessionManager, clock: ManualClock, start: int, count: int) -> list[str]:
    """`count` sessions of one equal entry each, each later active than the one before."""
    ids = []
    for index in range(start, start + count):
        session = await manager.get_or_create_session(user_id=f"u{index:04d}", channel_id="telegram")
        await manager.add_message(session.id, "user", "x" * 1000)
        ids.append(session.id)
        clock.advance(timedelta(minutes=1))
    return ids


async def _sweep_removing_two(
    manager: SessionManager, clock: ManualClock, meter: WorkMeter, held: int
) -> tuple[int, Counter[str]]:
    """Set a budget that `held` equal sessions are over by two, run the sweep (its events applied
    by a worker), and return the work counted for it and the documents it read, by collection."""
    total = await manager.store.agent_stored_bytes("main")
    per = total // held
    assert total == per * held
    budget = int((held - 0.5) * per)  # over it; removing one session is not enough, two are
    high_water = (held - 1.5) / (held - 0.5)
    retention = {"max_store_bytes": budget, "store_high_water": high_water, "keep_minimum": KEEP_MINIMUM}
    await manager.agents.update("main", retention=retention)
    publisher = RecordingPublisher()
    handler = handler_for(manager, publisher, clock=clock)

    async def apply(event: EventBase, key: str) -> None:
        body = event.model_dump_json(by_alias=True).encode()
        await deliver(handler, Delivery(body, routing_key=key, user_id=SCHEDULER_USER))

    meter.reset()
    report = await Sweeper(manager.store, manager.agents, clock, apply).retention_sweep()
    work, documents = meter.work(), Counter(meter.documents)
    assert report.emitted == 2 and not publisher.dead
    return work, documents


async def test_a_budget_sweep_costs_the_same_on_a_store_ten_times_larger(
    metered: tuple[SessionStore, WorkMeter], clock: ManualClock
) -> None:
    store, meter = metered
    manager = create_session_manager(store=store, clock=clock, token_counter=CharRatioCounter())
    small = await _fill(manager, clock, 0, 20)
    small_work, small_documents = await _sweep_removing_two(manager, clock, meter, 20)
    left = {s.id for s in (await manager.list_sessions(limit=500)).items}
    assert left == set(small[2:])  # the two longest inactive went

    large = await _fill(manager, clock, 20, 180)
    large_work, large_documents = await _sweep_removing_two(manager, clock, meter, 198)
    left = {s.id for s in (await manager.list_sessions(limit=500)).items}
    assert left == set(small[4:] + large)  # the next two longest inactive, and nothing else
    # Ten times the sessions, the same work: nothing the sweep does grows with the store.
    assert large_work <= small_work * 1.2, (small_work, large_work)
    assert large_documents == small_documents
    # MongoDB: the sessions read are those kept (the keep_minimum newest, read by the sweep, by the
    # budget and by each event's re-check) and the two removed (a few reads each), not the store's 198.
    assert large_documents["sessions"] <= 4 * KEEP_MINIMUM + 4 * 2, large_documents
