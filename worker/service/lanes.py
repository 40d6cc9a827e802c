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
        self._tasks: set[asyncio.Task[None]] = set()  # the tasks draining a lane, for cancel()
        self._cancelled = False

    async def run(self, key: str, item: T) -> None:
        """Queue an item behind the key's earlier items; the first caller of an idle key drains the
        lane in its own task (no task per item), later callers return at once. Everything before
        the first await runs synchronously, so call order is run order. After cancel() nothing
        runs: the item stays unacknowledged and returns to its queue when the channel closes."""
        if self._cancelled:
            return
        queue = self._queues.get(key)
        if queue is not None:
            queue.append(item)
            return
        queue = self._queues[key] = deque((item,))
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
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
            self._tasks.discard(task)

    async def cancel(self) -> None:
        """Abandon every lane, and take nothing new: a delivery arriving while the cancelled ones
        wind down must not start a lane of its own, or it would run before the earlier items of its
        key that were just abandoned (and come back from the broker later)."""
        self._cancelled = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
