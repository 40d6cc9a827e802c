"""Whether the store takes work: learned from the writes that fail and from a write probe.

An unwell store (full disk, read-only or corrupt file, I/O errors, MongoDB without a primary)
fails every event alike, so nothing is dead-lettered for it: the worker holds what it has, stops
taking more, reports not ready and waits for the store. One log line per change of state, however
many events meet the failure meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from worker.errors import StoreUnavailable

log = logging.getLogger(__name__)
OnChange = Callable[[bool], None]
Probe = Callable[[], Awaitable[None]]
Tick = Callable[[], Awaitable[None]]
PROBE_TIMEOUT = 2.0  # below the Kubernetes readiness probe's 3 s timeout (ops/k8s)
FIRST_PROBE_DELAY = 0.25
LONGEST_PROBE_DELAY = 5.0
# A store that fails again this soon after it recovered (a disk with room for small writes only)
# keeps the longer probe delay: it changes state at most once per LONGEST_PROBE_DELAY.
SETTLED_AFTER = 30.0


class StoreHealth:
    def __init__(self) -> None:
        self._unwell_since: float | None = None
        self._well_since = time.monotonic()
        self._reason = ""
        self._recovered = asyncio.Event()
        self._recovered.set()
        self._listeners: list[OnChange] = []

    @property
    def well(self) -> bool:
        return self._unwell_since is None

    @property
    def reason(self) -> str:
        return self._reason

    @property
    def settled(self) -> bool:
        """Well, and for a while."""
        return self.well and time.monotonic() - self._well_since >= SETTLED_AFTER

    def on_change(self, listener: OnChange) -> None:
        """Call `listener(well)` on every change of state."""
        self._listeners.append(listener)

    def failed(self, exc: BaseException) -> None:
        """A store operation failed because the store is unwell."""
        self._reason = str(exc)[:300]
        if self._unwell_since is not None:
            return
        self._unwell_since = time.monotonic()
        self._recovered.clear()
        log.warning("store unavailable; holding events and taking no new ones until it works again: %s", self._reason)
        self._notify(well=False)

    def recovered(self) -> None:
        """The write probe succeeded: the store takes work again. (Only the probe says so: an
        event's write may fit where the next one does not.)"""
        if self._unwell_since is None:
            return
        down = time.monotonic() - self._unwell_since
        self._unwell_since = None
        self._well_since = time.monotonic()
        self._reason = ""
        self._recovered.set()
        log.info("store works again after %.1fs; resuming", down)
        self._notify(well=True)

    async def wait_recovered(self, within: float) -> None:
        """Return when the store is well again, or after `within` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._recovered.wait()

    def _notify(self, *, well: bool) -> None:
        for listener in self._listeners:
            listener(well)


async def watch(health: StoreHealth, probe: Probe, stop: asyncio.Event, after_each: Tick, interval: float) -> None:
    """Until `stop`: while the store is unwell, probe it with back-off (the first probe that
    succeeds declares it well); every `interval` while well; `after_each` after each look."""
    delay = FIRST_PROBE_DELAY
    while not stop.is_set():
        if health.settled:
            delay = FIRST_PROBE_DELAY
        elif not health.well:
            await probe_once(health, probe)
            delay = min(delay * 2, LONGEST_PROBE_DELAY)
        await after_each()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(interval if health.well else delay):
                await stop.wait()


async def probe_once(health: StoreHealth, probe: Probe) -> bool:
    """Run the write probe once and record what it says; a probe that does not answer in time
    counts as a failure without changing the state (a slow store is not an unwell one)."""
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            await probe()
    except StoreUnavailable as exc:
        health.failed(exc)
        return False
    except TimeoutError:
        return False
    health.recovered()
    return True
