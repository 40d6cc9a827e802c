"""When a session is due for a daily or idle reset. Pure functions of the policy and times."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from schemas import ResetPolicy, SessionEntry

ResetReason = Literal["daily", "idle"]


@dataclass(frozen=True, slots=True)
class ResetDue:
    reason: ResetReason
    due_at: datetime

    def describe(self, policy: ResetPolicy) -> str:
        if self.reason == "daily":
            return f"daily at {policy.daily_at} {policy.time_zone}"
        return f"idle for {policy.idle_minutes} min"


def last_daily_boundary(policy: ResetPolicy, now: datetime) -> datetime:
    """The latest daily reset instant at or before `now`, in UTC.

    The local wall time is resolved in the agent's zone: on a daylight-saving gap a missing
    HH:MM falls at the first instant after the gap, on an overlap at its first occurrence.
    """
    zone = ZoneInfo(policy.time_zone)
    hour, minute = (int(part) for part in policy.daily_at.split(":"))
    local_day = now.astimezone(zone).date()
    for back in range(3):
        day = local_day - timedelta(days=back)
        wall = datetime.combine(day, time(hour, minute), tzinfo=zone)
        # Round-tripping through UTC normalizes a wall time that falls in a DST gap.
        boundary = wall.astimezone(UTC)
        if boundary <= now:
            return boundary
    raise AssertionError("a daily boundary always exists within three days")


def next_daily_boundary(policy: ResetPolicy, now: datetime) -> datetime:
    """The first daily reset instant strictly after `now`, in UTC."""
    zone = ZoneInfo(policy.time_zone)
    hour, minute = (int(part) for part in policy.daily_at.split(":"))
    local_day = now.astimezone(zone).date()
    for ahead in range(3):
        day = local_day + timedelta(days=ahead)
        boundary = datetime.combine(day, time(hour, minute), tzinfo=zone).astimezone(UTC)
        if boundary > now:
            return boundary
    raise AssertionError("a daily boundary always exists within three days")


def session_policy(policy: ResetPolicy, session: SessionEntry) -> ResetPolicy:
    """The agent's policy as it applies to this session's chat: its type (a thread when it has a
    thread id) and its channel, from where the session started."""
    origin = session.origin
    if origin is None or not (policy.by_type or policy.by_channel):
        return policy
    kind = "thread" if origin.thread_id else origin.chat_type
    return policy.for_chat(kind, origin.channel)


def session_reset_due(policy: ResetPolicy, session: SessionEntry, now: datetime) -> ResetDue | None:
    return reset_due(session_policy(policy, session), session.last_activity_at, now)


def reset_of(session: SessionEntry) -> ResetDue | None:
    """The daily or idle reset that archived this session, if one did."""
    if session.archived_at is None:
        return None
    if session.archived_reason == "daily":
        return ResetDue("daily", session.archived_at)
    if session.archived_reason == "idle":
        return ResetDue("idle", session.archived_at)
    return None


def reset_due(policy: ResetPolicy, last_activity_at: datetime, now: datetime) -> ResetDue | None:
    """The reset that applies to a session last active at `last_activity_at`, if any.

    With daily+idle, whichever came first wins.
    """
    candidates: list[ResetDue] = []
    if policy.daily:
        boundary = last_daily_boundary(policy, now)
        if last_activity_at < boundary:
            candidates.append(ResetDue("daily", boundary))
    if policy.idle:
        idle_at = last_activity_at + timedelta(minutes=policy.idle_minutes)
        if idle_at <= now:
            candidates.append(ResetDue("idle", idle_at))
    if not candidates:
        return None
    return min(candidates, key=lambda due: due.due_at)
