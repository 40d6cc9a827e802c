"""Re-checks of the scheduler's control events against the store, when a worker applies them.

The scheduler decided from what it read at sweep time; the worker applies the event later, in
order with the session's other events, and only if the session's current state still justifies
it. So a replayed, delayed or forged event never resets or deletes more than the policy allows.
"""

from __future__ import annotations

import logging
from datetime import datetime

from schemas import RetentionPolicy, SessionEntry, parse_duration
from schemas.events import RetentionDue, SessionResetDue
from worker.engine.outcome import Outcome
from worker.stores.base import RetentionRecords, SessionQuery, SessionRecords

log = logging.getLogger(__name__)


def rule_limit(rule: str, retention: RetentionPolicy) -> str:
    if rule == "max_store_bytes":
        return f"{retention.max_store_bytes} bytes, down to {retention.budget_target}"
    return retention.max_age if rule == "max_age" else retention.max_inactive


def past_rule(session: SessionEntry, rule: str, retention: RetentionPolicy, now: datetime) -> bool:
    """As the sweep decides it: created (max_age) or last active (max_inactive) before the limit.
    The store budget is checked against the agent's total (over_budget)."""
    if rule == "max_store_bytes":
        return retention.max_store_bytes is not None
    moment = session.created_at if rule == "max_age" else session.last_activity_at
    return moment < now - parse_duration(rule_limit(rule, retention))


async def kept_minimum(store: SessionRecords, session: SessionEntry, keep_minimum: int) -> bool:
    """One of its agent's `keep_minimum` most recently active sessions (the sweep's own query)."""
    if keep_minimum <= 0:
        return False
    newest = await store.list_sessions(SessionQuery(agent_id=session.agent_id, limit=keep_minimum))
    return any(kept.id == session.id for kept in newest)


def ignored(event: SessionResetDue | RetentionDue, why: str) -> Outcome:
    """A control event the store does not justify: nothing changes, one log line says why."""
    log.info(
        "ignoring %s %s for session %s: %s",
        event.type,
        event.event_id,
        event.session_id,
        why,
        extra={"event_id": event.event_id, "event_type": event.type, "session_id": event.session_id},
    )
    return Outcome()


async def over_budget(store: RetentionRecords, session: SessionEntry, retention: RetentionPolicy) -> bool:
    """Whether the session's agent still holds more than its budget's high-water mark."""
    target = retention.budget_target
    return target is not None and await store.agent_stored_bytes(session.agent_id) > target
