"""A worker starts the shard subscriptions it takes over all at once, and keeps those that started
when another fails."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from worker.amqp.service import WorkerService
from worker.config import Settings
from worker.engine.clock import system_clock


class Group:
    def __init__(self) -> None:
        self.members: list[FakeSubscription] = []
        self.starting = 0
        self.all_starting = asyncio.Event()


class FakeSubscription:
    """Starts only once every fake of its group is starting: run one after another, they never do."""

    def __init__(self, group: Group, fails: bool = False) -> None:
        self.group = group
        self.fails = fails
        self.paused: bool | None = None
        group.members.append(self)

    async def start(self, *, paused: bool = False) -> None:
        self.paused = paused
        self.group.starting += 1
        if self.group.starting == len(self.group.members):
            self.group.all_starting.set()
        async with asyncio.timeout(5):
            await self.group.all_starting.wait()
        if self.fails:
            raise ConnectionError("channel refused")


async def test_the_subscriptions_start_together_and_the_started_ones_are_kept() -> None:
    service = WorkerService(Settings(), cast(Any, None), system_clock)
    group = Group()
    fresh = {shard: FakeSubscription(group, fails=shard == 2) for shard in range(4)}
    with pytest.raises(ConnectionError, match="refused"):
        await service._start_all(cast(Any, fresh))
    assert service.owned == frozenset({0, 1, 3})
    assert all(each.paused is False for each in group.members)
