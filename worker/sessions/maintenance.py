"""Cleanup of old sessions together with their entries, checkpoints and summaries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from schemas import RetentionPolicy, SessionEntry, SessionStatus, parse_duration
from worker.engine.clock import Clock
from worker.errors import InvalidArgument
from worker.stores.base import DeletedCounts, RetentionStore, SessionQuery, SessionScan

_PAGE = 500
_FIRST_BUDGET_PAGE = 2  # the budget sweep's first page of candidates; each next one doubles


@dataclass(frozen=True, slots=True)
class CleanupReport:
    dry_run: bool
    sessions: int = 0
    entries: int = 0
    checkpoints: int = 0
    summaries: int = 0
    kept_with_checkpoints: int = 0
    session_ids: tuple[str, ...] = field(default=(), repr=False)


@dataclass(frozen=True, slots=True)
class CleanupRequest:
    older_than: str
    keep_checkpoints: bool
    agent_id: str | None
    dry_run: bool
    include_active: bool = False


async def cleanup(store: RetentionStore, clock: Clock, request: CleanupRequest) -> CleanupReport:
    """Delete sessions inactive for longer than `older_than`, archived ones only unless asked.

    With `keep_checkpoints`, a session that has checkpoints stays with them and the entries they
    need (up to the newest checkpoint's last entry); its later entries go. A dry run counts
    exactly what the real run deletes.
    """
    try:
        cutoff = clock() - parse_duration(request.older_than)
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from exc
    doomed, kept = await _candidates(store, cutoff, request)
    totals = DeletedCounts()
    for start in range(0, len(doomed), _PAGE):
        page = doomed[start : start + _PAGE]
        counts = await (store.count_records(page) if request.dry_run else store.delete_sessions(page))
        totals = _add(totals, counts)
    trimmed = 0
    for session_id, needed in kept.items():
        trimmed += await store.entries_after(session_id, needed, delete=not request.dry_run)
    return CleanupReport(
        dry_run=request.dry_run,
        sessions=totals.sessions,
        entries=totals.entries + trimmed,
        checkpoints=totals.checkpoints,
        summaries=totals.summaries,
        kept_with_checkpoints=len(kept),
        session_ids=tuple(doomed),
    )


async def _candidates(
    store: RetentionStore, cutoff: datetime, request: CleanupRequest
) -> tuple[list[str], dict[str, int]]:
    """The sessions to delete, and those kept for their checkpoints with the last entry they need."""
    doomed: list[str] = []
    kept: dict[str, int] = {}
    after = None
    status: SessionStatus | None = None if request.include_active else "archived"
    while True:
        scan = SessionScan(before=cutoff, agent_id=request.agent_id, status=status, limit=_PAGE, after=after)
        page: list[SessionEntry] = await store.scan_sessions(scan)
        if not page:
            return doomed, kept
        after = (page[-1].last_activity_at, page[-1].id)
        ids = [session.id for session in page]
        if request.keep_checkpoints:
            for checkpoint in await store.list_checkpoints(ids):
                kept[checkpoint.session_id] = max(kept.get(checkpoint.session_id, 0), checkpoint.last_seq)
        doomed.extend(sid for sid in ids if sid not in kept)


def _add(a: DeletedCounts, b: DeletedCounts) -> DeletedCounts:
    return DeletedCounts(
        sessions=a.sessions + b.sessions,
        entries=a.entries + b.entries,
        checkpoints=a.checkpoints + b.checkpoints,
        summaries=a.summaries + b.summaries,
    )


async def over_budget_sessions(
    store: RetentionStore,
    agent_id: str,
    retention: RetentionPolicy,
    now: datetime,
    *,
    skip: frozenset[str] = frozenset(),
    freed: int = 0,
) -> list[SessionEntry]:
    """The longest-inactive sessions that must go to bring an agent over its store budget back
    under the high-water mark, never one of its `keep_minimum` most recently active.

    O(sessions touched): the agent's total is its byte counter (one lookup), and the candidates
    come oldest first off the activity index in pages that start small and double, so a sweep
    that removes two sessions reads about two (plus the `keep_minimum` it protects)."""
    budget, target = retention.max_store_bytes, retention.budget_target
    if budget is None or target is None:
        return []
    total = await store.agent_stored_bytes(agent_id) - freed  # `skip`'s sessions are going already
    if total <= budget:
        return []
    newest = await store.list_sessions(SessionQuery(agent_id=agent_id, limit=max(retention.keep_minimum, 1)))
    protected = {session.id for session in newest[: retention.keep_minimum]} | skip
    chosen: list[SessionEntry] = []
    after = None
    limit = _FIRST_BUDGET_PAGE
    while total > target:
        scan = SessionScan(before=now + timedelta(days=1), agent_id=agent_id, limit=limit, after=after)
        page = await store.scan_sessions(scan)
        for session in page:
            if total <= target:
                break
            if session.id not in protected:
                chosen.append(session)
                total -= session.stored_bytes
        if len(page) < limit:
            break  # the agent has no older sessions left
        after = (page[-1].last_activity_at, page[-1].id)
        limit = min(limit * 2, _PAGE)
    return chosen


async def cleanup_budget(
    store: RetentionStore, clock: Clock, agent_id: str, retention: RetentionPolicy, *, dry_run: bool
) -> CleanupReport:
    """`sessions cleanup --budget`: what the scheduler's budget sweep does, at once."""
    doomed = [session.id for session in await over_budget_sessions(store, agent_id, retention, clock())]
    counts = await (store.count_records(doomed) if dry_run else store.delete_sessions(doomed))
    return CleanupReport(
        dry_run=dry_run,
        sessions=counts.sessions,
        entries=counts.entries,
        checkpoints=counts.checkpoints,
        summaries=counts.summaries,
        session_ids=tuple(doomed),
    )
