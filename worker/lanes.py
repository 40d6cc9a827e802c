"""Per-key lanes: items of one key run one after another, different keys run concurrently."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class Lanes(Generic[T]):
    def __init__(self, handle: Callable[[T], Awaitable[None]]) -> None:
        self._handle = handle
        self._queues: dict[str, deque[T]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    def __len__(self) -> int:
        """Items waiting or running."""
        return sum(len(queue) for queue in self._queues.values())

    def submit(self, key: str, item: T) -> None:
        """Queue an item behind the key's earlier items. Never awaits, so call order is run order."""
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = deque()
            task = asyncio.get_running_loop().create_task(self._drain(key, queue))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        queue.append(item)
        self._idle.clear()

    async def _drain(self, key: str, queue: deque[T]) -> None:
        try:
            while queue:
                try:
                    await self._handle(queue[0])
                except Exception:
                    # Handlers report their own failures; a bug here must not stall the lane.
                    log.exception("lane %s: handler failed", key)
                queue.popleft()
        finally:
            del self._queues[key]
            if not self._queues:
                self._idle.set()

    async def wait_idle(self) -> None:
        await self._idle.wait()

    async def cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
