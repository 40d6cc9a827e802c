"""The scheduler's sweeps: find sessions due for a reset or for retention and emit events.

Event ids derive from the job, the due time and the session, so two scheduler replicas, a
restart or a replay emit the same ids and the workers apply each reset or deletion once. The
sweeps only read; every change is made by the workers, in order with the session's other events.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from schemas import AgentSettings, ResetPolicy, RetentionPolicy, SessionEntry, parse_duration
from schemas.events import EventBase, RetentionDue, SessionResetDue
from worker.engine.clock import Clock
from worker.engine.idempotency import scoped, session_scope
from worker.engine.outcome import derived_id
from worker.engine.resets import last_daily_boundary, session_reset_due
from worker.sessions.agents import AgentDirectory
from worker.sessions.maintenance import over_budget_sessions
from worker.stores.base import SessionQuery, SessionScan, SweepStore

log = logging.getLogger(__name__)
Emit = Callable[[EventBase, str], Awaitable[None]]
RetentionRule = Literal["max_inactive", "max_age", "max_store_bytes"]
ScanField = Literal["last_activity_at", "created_at"]
PAGE = 500


@dataclass
class SweepReport:
    job: str
    examined: int = 0
    emitted: int = 0
    warned: int = 0
    kept_minimum: int = 0
    seconds: float = 0.0


def reset_event_id(session_id: str, due_at: datetime) -> str:
    return "reset-" + derived_id(session_id, f"reset@{due_at.isoformat()}")


def retention_event_id(session: SessionEntry, rule: str, mode: str) -> str:
    """A warning names the session's state, so it is given once until the session changes."""
    state = f"@{session.updated_at.isoformat()}" if mode == "warn" else ""
    return f"retention-{mode}-" + derived_id(session.id, f"retention:{rule}{state}")


def reset_cutoff(settings: AgentSettings, now: datetime) -> datetime | None:
    """Sessions last active before this instant may be due: the latest cutoff of the agent's
    policy and its per-type and per-channel variants (each session is then checked by its own)."""
    cutoffs = [cutoff for policy in settings.reset.variants() if (cutoff := _cutoff(policy, now)) is not None]
    return max(cutoffs) if cutoffs else None


def _cutoff(policy: ResetPolicy, now: datetime) -> datetime | None:
    cutoffs = []
    if policy.daily:
        cutoffs.append(last_daily_boundary(policy, now))
    if policy.idle:
        # reset_due is inclusive at exactly idle minutes; a millisecond covers that boundary.
        cutoffs.append(now - timedelta(minutes=policy.idle_minutes) + timedelta(milliseconds=1))
    return max(cutoffs) if cutoffs else None


async def _scan(store: SweepStore, scan: SessionScan) -> AsyncIterator[SessionEntry]:
    while True:
        page = await store.scan_sessions(scan)
        for session in page:
            yield session
        if len(page) < scan.limit:
            return
        last = page[-1]
        moment = last.created_at if scan.field == "created_at" else last.last_activity_at
        scan = SessionScan(
            before=scan.before,
            field=scan.field,
            agent_id=scan.agent_id,
            status=scan.status,
            limit=scan.limit,
            after=(moment, last.id),
        )


class Sweeper:
    def __init__(self, store: SweepStore, agents: AgentDirectory, clock: Clock, emit: Emit) -> None:
        self._store = store
        self._agents = agents
        self._clock = clock
        self._emit = emit

    async def _agent_settings(self) -> list[AgentSettings]:
        return [await self._agents.get(agent) for agent in sorted(await self._store.agent_ids())]

    async def reset_sweep(self) -> SweepReport:
        report = SweepReport("reset")
        now = self._clock()
        for settings in await self._agent_settings():
            cutoff = reset_cutoff(settings, now)
            if cutoff is None:
                continue
            scan = SessionScan(before=cutoff, agent_id=settings.agent_id, status="active", limit=PAGE)
            async for session in _scan(self._store, scan):
                report.examined += 1
                due = session_reset_due(settings.reset, session, now)
                if due is None:
                    continue
                event = SessionResetDue(
                    event_id=reset_event_id(session.id, due.due_at),
                    agent_id=session.agent_id,
                    session_id=session.id,
                    reason=due.reason,
                    due_at=due.due_at,
                    occurred_at=now,
                )
                await self._emit(event, session.key)
                report.emitted += 1
        return report

    async def _retire(
        self, session: SessionEntry, rule: RetentionRule, policy: RetentionPolicy, now: datetime, report: SweepReport
    ) -> None:
        """Emit the retention event of one session (a warning only once until the session changes)."""
        event_id = retention_event_id(session, rule, policy.mode)
        if policy.mode == "warn" and await self._warned(event_id, session.id):
            return
        mode: Literal["enforce", "warn"] = "warn" if policy.mode == "warn" else "enforce"
        event = RetentionDue(
            event_id=event_id, agent_id=session.agent_id, session_id=session.id, rule=rule, mode=mode, occurred_at=now
        )
        await self._emit(event, session.key)
        report.emitted += 1
        if policy.mode == "warn":
            report.warned += 1

    async def _warned(self, event_id: str, session_id: str) -> bool:
        """Whether a worker applied this warning already (its outcome is recorded)."""
        return await self._store.get_outcome(scoped(event_id, session_scope(session_id))) is not None

    async def prune_outcomes(self, keep: timedelta) -> SweepReport:
        """Forget processed-event outcomes older than `keep` (long past any redelivery)."""
        report = SweepReport("outcomes")
        report.emitted = await self._store.prune_outcomes(self._clock() - keep)
        return report

    async def retention_sweep(self) -> SweepReport:
        report = SweepReport("retention")
        now = self._clock()
        for settings in await self._agent_settings():
            await self._retention_for(settings, now, report)
        return report

    async def _retention_for(self, settings: AgentSettings, now: datetime, report: SweepReport) -> None:
        policy = settings.retention
        if policy.mode == "off":
            return
        # The most recently active sessions are never candidates: retention keeps keep_minimum.
        newest = await self._store.list_sessions(
            SessionQuery(agent_id=settings.agent_id, limit=max(policy.keep_minimum, 1))
        )
        protected = {session.id for session in newest[: policy.keep_minimum]}
        report.kept_minimum += len(protected)
        seen: set[str] = set()
        rules: tuple[tuple[RetentionRule, ScanField, datetime], ...] = (
            ("max_inactive", "last_activity_at", now - parse_duration(policy.max_inactive)),
            ("max_age", "created_at", now - parse_duration(policy.max_age)),
        )
        freed = 0
        for rule, field, before in rules:
            scan = SessionScan(before=before, field=field, agent_id=settings.agent_id, limit=PAGE)
            async for session in _scan(self._store, scan):
                report.examined += 1
                if session.id in protected or session.id in seen:
                    continue
                seen.add(session.id)
                freed += session.stored_bytes
                await self._retire(session, rule, policy, now, report)
        # The store budget: past the age rules, the longest-inactive sessions go until under its mark.
        for session in await over_budget_sessions(
            self._store, settings.agent_id, policy, now, skip=frozenset(seen), freed=freed
        ):
            report.examined += 1
            seen.add(session.id)
            await self._retire(session, "max_store_bytes", policy, now, report)
        if policy.mode == "warn" and seen:
            log.warning(
                "retention (warn mode) for agent %s: %d sessions past retention, none deleted",
                settings.agent_id,
                len(seen),
            )
