"""Injectable time source. Times are UTC and truncated to milliseconds (what MongoDB keeps)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return truncate_ms(datetime.now(UTC))


def truncate_ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class ManualClock:
    """A clock that moves only when told to: for tests, simulations and benchmarks."""

    def __init__(self, start: datetime) -> None:
        self._now = truncate_ms(start.astimezone(UTC))

    def __call__(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now = truncate_ms(self._now + delta)

    def set(self, moment: datetime) -> None:
        self._now = truncate_ms(moment.astimezone(UTC))
