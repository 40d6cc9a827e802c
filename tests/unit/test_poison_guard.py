"""Poison detection in process: attempts counted in the store for redelivered events only, the
event dead-lettered `poison` at the limit, and redelivered-again events applied one at a time."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

from schemas.events import ChatSource, InboundMessage
from tests.support.fakes import Delivery, RecordingPublisher, delivery_of, handler_for
from worker import create_session_manager
from worker.amqp.poison import _Gate
from worker.engine.clock import system_clock
from worker.engine.tokens import CharRatioCounter
from worker.service.processor import ordering_key

SOURCE = ChatSource(channel="telegram", peer_id="9", user_id="9")


def _redelivery(event_id: str, count: int) -> Delivery:
    event = InboundMessage(event_id=event_id, source=SOURCE, text="hi")
    delivery = delivery_of(event.model_dump(mode="json", by_alias=True), ordering_key("main", SOURCE))
    delivery.redelivered = count > 0
    delivery.headers = {"x-delivery-count": count}
    return delivery


async def test_the_nth_unacked_delivery_is_dead_lettered_as_poison(tmp_path: Path) -> None:
    manager = create_session_manager(db_path=str(tmp_path / "p.db"), token_counter=CharRatioCounter())
    await manager.open()
    publisher = RecordingPublisher()
    handler = handler_for(manager, publisher, poison_attempts=3)
    store = manager.store
    # Two earlier redeliveries were counted and then their workers died (nothing settled them).
    for _ in range(2):
        await store.record_attempt(f"{ordering_key('main', SOURCE)}|e1", system_clock())
    third = _redelivery("e1", 3)
    await handler.handle(cast(Any, third))
    assert third.acks == 1 and publisher.dead[0][0] == "poison" and not publisher.outcomes
    # A healthy redelivered event is applied, and its attempts are forgotten.
    healthy = _redelivery("e2", 1)
    await handler.handle(cast(Any, healthy))
    assert healthy.acks == 1 and len(publisher.outcomes) == 1
    assert await store.record_attempt(f"{ordering_key('main', SOURCE)}|e2", system_clock()) == 1
    await manager.close()


async def test_a_first_delivery_writes_no_attempt(tmp_path: Path) -> None:
    manager = create_session_manager(db_path=str(tmp_path / "f.db"), token_counter=CharRatioCounter())
    await manager.open()
    handler = handler_for(manager, RecordingPublisher(), poison_attempts=1)
    first = _redelivery("e3", 0)
    await handler.handle(cast(Any, first))  # with a limit of 1, any counted attempt would be poison
    assert first.acks == 1
    await manager.close()


async def test_a_solo_turn_runs_alone_and_shared_turns_together() -> None:
    gate = _Gate()
    running: list[str] = []
    overlaps: list[tuple[str, ...]] = []

    async def turn(name: str, *, solo: bool) -> None:
        async with gate.turn(solo=solo):
            running.append(name)
            overlaps.append(tuple(running))
            await asyncio.sleep(0.02)
            running.remove(name)

    await asyncio.gather(
        turn("a", solo=False), turn("b", solo=False), turn("S", solo=True), turn("c", solo=False), turn("T", solo=True)
    )
    assert any(len(seen) == 2 for seen in overlaps)  # the shared ones ran together
    assert all(seen == (name,) for seen in overlaps for name in seen if name in "ST")  # the solos alone
