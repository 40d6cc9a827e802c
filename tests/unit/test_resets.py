"""Daily and idle reset due-times across time zones and daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas import ResetPolicy
from worker.engine.resets import last_daily_boundary, next_daily_boundary, reset_due


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_daily_boundary_in_the_agents_zone() -> None:
    policy = ResetPolicy(mode="daily", daily_at="04:00", time_zone="Europe/Berlin")
    # 04:00 Berlin in winter is 03:00 UTC.
    assert last_daily_boundary(policy, utc(2026, 1, 10, 3, 30)) == utc(2026, 1, 10, 3, 0)
    assert last_daily_boundary(policy, utc(2026, 1, 10, 2, 59)) == utc(2026, 1, 9, 3, 0)
    assert next_daily_boundary(policy, utc(2026, 1, 10, 3, 0)) == utc(2026, 1, 11, 3, 0)
    tokyo = ResetPolicy(mode="daily", daily_at="00:00", time_zone="Asia/Tokyo")
    assert last_daily_boundary(tokyo, utc(2026, 1, 10, 16, 0)) == utc(2026, 1, 10, 15, 0)


def test_daily_boundary_across_spring_forward() -> None:
    # Europe/Berlin skips 02:00-03:00 on 2026-03-29; a 02:30 reset happens at the first instant after.
    policy = ResetPolicy(mode="daily", daily_at="02:30", time_zone="Europe/Berlin")
    boundary = last_daily_boundary(policy, utc(2026, 3, 29, 12, 0))
    assert boundary == utc(2026, 3, 29, 1, 30)  # 03:30 CEST
    assert last_daily_boundary(policy, utc(2026, 3, 28, 12, 0)) == utc(2026, 3, 28, 1, 30)  # 02:30 CET
    assert last_daily_boundary(policy, utc(2026, 3, 30, 12, 0)) == utc(2026, 3, 30, 0, 30)  # 02:30 CEST


def test_daily_boundary_across_fall_back_happens_once() -> None:
    # 2026-10-25: Berlin repeats 02:00-03:00; the reset fires at the first 02:30 only.
    policy = ResetPolicy(mode="daily", daily_at="02:30", time_zone="Europe/Berlin")
    first = utc(2026, 10, 25, 0, 30)  # 02:30 CEST
    assert last_daily_boundary(policy, utc(2026, 10, 25, 1, 45)) == first
    assert reset_due(policy, first + timedelta(minutes=1), utc(2026, 10, 25, 1, 45)) is None


def test_idle_and_whichever_first() -> None:
    idle = ResetPolicy(mode="idle", idle_minutes=30)
    last = utc(2026, 1, 10, 12, 0)
    assert reset_due(idle, last, last + timedelta(minutes=29)) is None
    due = reset_due(idle, last, last + timedelta(minutes=30))
    assert due is not None and (due.reason, due.due_at) == ("idle", last + timedelta(minutes=30))

    both = ResetPolicy(mode="daily+idle", daily_at="12:10", time_zone="UTC", idle_minutes=30)
    due = reset_due(both, last, utc(2026, 1, 10, 12, 40))
    assert due is not None and due.reason == "daily" and due.due_at == utc(2026, 1, 10, 12, 10)
    both_late = ResetPolicy(mode="daily+idle", daily_at="13:00", time_zone="UTC", idle_minutes=30)
    due = reset_due(both_late, last, utc(2026, 1, 10, 13, 5))
    assert due is not None and due.reason == "idle"


def test_mode_off_never_resets() -> None:
    off = ResetPolicy(mode="off", idle_minutes=1)
    assert reset_due(off, utc(2020, 1, 1), utc(2026, 1, 1)) is None
