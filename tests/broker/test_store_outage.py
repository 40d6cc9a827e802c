"""A worker process whose SQLite file sits on a small tmpfs that fills up under load: nothing
dead-lettered, lost, doubled or reordered, /readyz 503 while it lasts, and the worker resumes by
itself once space is freed. (A read-only or corrupt file: tests/faults/test_store_unwell.py.)"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from schemas.events import ChatSource, InboundMessage
from tests.support.backends import WorkerStore
from tests.support.broker import BrokerHarness, isolated_topology
from tests.support.processes import WorkerProcesses
from tests.support.small_disk import fill, require_root, small_disk
from worker import create_session_manager
from worker.engine.tokens import TiktokenCounter
from worker.service.processor import ordering_key

pytestmark = [pytest.mark.broker, pytest.mark.slow]
log = logging.getLogger(__name__)
SLOTS, ROUNDS = 40, 30


@pytest.fixture
async def rig(
    amqp_url: str, tmp_path: Path, token_counter: TiktokenCounter
) -> AsyncIterator[tuple[BrokerHarness, WorkerProcesses, Path]]:
    require_root()
    with small_disk(tmp_path / "disk", "8m") as disk:
        async with isolated_topology(amqp_url, shards=4) as names:
            harness = await BrokerHarness(amqp_url, names, WorkerStore.sqlite_in(tmp_path), token_counter).open()
            workers = WorkerProcesses(amqp_url, names, WorkerStore.sqlite_in(disk), log_dir=tmp_path)
            try:
                yield harness, workers, disk
            finally:
                workers.stop_all()
                await harness.close()


def _event(slot: int, round_: int) -> tuple[InboundMessage, str]:
    source = ChatSource(channel="slack", peer_id=f"p{slot}", user_id=f"p{slot}")
    event = InboundMessage(event_id=f"e-{slot}-{round_}", source=source, text=f"slot {slot} message {round_}")
    return event, ordering_key("main", source)


async def _stream(harness: BrokerHarness, rounds: range, pace: float) -> None:
    assert harness.gateway is not None
    for round_ in rounds:
        await asyncio.gather(*(harness.gateway.publish(*_event(slot, round_)) for slot in range(SLOTS)))
        await asyncio.sleep(pace)


async def _wait_status(workers: WorkerProcesses, status: int, within: float) -> str:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        answer = await asyncio.to_thread(workers.readiness, 0)
        if answer is not None and answer[0] == status:
            return answer[1]
        await asyncio.sleep(0.2)
    raise AssertionError(f"/readyz did not answer {status} within {within}s (last: {answer})")


async def _outage(
    rig: tuple[BrokerHarness, WorkerProcesses, Path],
    tmp_path: Path,
    token_counter: TiktokenCounter,
    *,
    break_disk: Callable[[Path], Callable[[], None]],
) -> float:
    """Stream, break the disk mid-stream, hold, mend it; check everything; the time to recover."""
    harness, workers, disk = rig
    workers.start(0)
    await _stream(harness, range(5), pace=0.05)
    await harness.turns.wait_count(SLOTS * 5, timeout=60)
    mend = break_disk(disk)
    await _stream(harness, range(5, ROUNDS), pace=0.05)  # under load, into the broken disk
    body = await _wait_status(workers, 503, within=20)
    assert "store unavailable" in body
    stuck = len(harness.turns.items)
    await asyncio.sleep(3)  # a while broken: still nothing dead-lettered, nothing acked past the fault
    assert not harness.dead.items, harness.dead.items[:3]
    assert (await asyncio.to_thread(workers.readiness, 0) or (0, ""))[0] == 503
    assert stuck < SLOTS * ROUNDS, "the fault did not hold anything back"
    mended_at = time.monotonic()
    mend()
    await harness.turns.wait_count(SLOTS * ROUNDS, timeout=120)
    recovered = time.monotonic() - mended_at
    await _wait_status(workers, 200, within=20)
    assert not harness.dead.items
    await _check_chats(harness, disk, token_counter)
    log = (tmp_path / "worker-0.log").read_text()
    # One line per change of state, not one per event (there were hundreds of held events).
    assert 1 <= log.count("store unavailable; holding events") <= 5, log[-2000:]
    return recovered


async def _check_chats(harness: BrokerHarness, disk: Path, token_counter: TiktokenCounter) -> None:
    ids_per_event: dict[str, set[str]] = {}
    for turn in harness.turns.items:
        ids_per_event.setdefault(turn["inReplyTo"], set()).add(turn["eventId"])
    assert len(ids_per_event) == SLOTS * ROUNDS, "lost events"
    assert all(len(ids) == 1 for ids in ids_per_event.values()), "a re-published turn changed its id"
    async with create_session_manager(db_path=str(disk / "sessions.db"), token_counter=token_counter) as manager:
        for slot in range(SLOTS):
            session = await manager.get_or_create_session(user_id=f"p{slot}", channel_id="slack", peer_id=f"p{slot}")
            history = await manager.get_history(session.id, limit=ROUNDS + 5)
            assert [e.content for e in history] == [f"slot {slot} message {r}" for r in range(ROUNDS)], f"slot {slot}"


async def test_a_full_disk_holds_every_event_until_space_is_freed(
    rig: tuple[BrokerHarness, WorkerProcesses, Path], tmp_path: Path, token_counter: TiktokenCounter
) -> None:
    def break_disk(disk: Path) -> Callable[[], None]:
        filler = fill(disk)
        return filler.unlink

    recovered = await _outage(rig, tmp_path, token_counter, break_disk=break_disk)
    log.info("full disk: all %d events applied %.2fs after the space was freed", SLOTS * ROUNDS, recovered)
    assert recovered < 30
