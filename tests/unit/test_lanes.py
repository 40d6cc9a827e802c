"""Lanes: one key's items in order; after cancel(), nothing of any key runs any more."""

from __future__ import annotations

import asyncio

from worker.service.lanes import Lanes


async def test_an_item_arriving_after_its_lane_was_cancelled_does_not_run_ahead_of_it() -> None:
    ran: list[str] = []
    blocked = asyncio.Event()

    async def handle(item: str) -> None:
        ran.append(item)
        if item == "first":
            await blocked.wait()  # abandoned here by the cancel

    lanes: Lanes[str] = Lanes(handle)
    first = asyncio.create_task(lanes.run("slot", "first"))
    await asyncio.sleep(0)
    await lanes.run("slot", "queued behind it")
    await lanes.cancel()
    assert first.cancelled()
    await lanes.run("slot", "delivered during the cancel")  # would start a fresh lane: it must not
    await lanes.run("other slot", "any other")
    assert ran == ["first"]
