"""Cleanup of old sessions together with their entries, checkpoints and summaries."""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas import parse_duration
from worker.clock import Clock
from worker.errors import InvalidArgument
from worker.stores.base import SessionScan, SessionStore

_PAGE = 500


@dataclass(frozen=True, slots=True)
class CleanupReport:
    dry_run: bool
    sessions: int = 0
    entries: int = 0
    checkpoints: int = 0
    summaries: int = 0
    kept_with_checkpoints: int = 0
    session_ids: tuple[str, ...] = field(default=(), repr=False)


async def cleanup(
    store: SessionStore,
    clock: Clock,
    *,
    older_than: str,
    keep_checkpoints: bool,
    agent_id: str | None,
    dry_run: bool,
) -> CleanupReport:
    """Delete sessions inactive for longer than `older_than` (keeping those with checkpoints)."""
    try:
        cutoff = clock() - parse_duration(older_than)
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from exc
    doomed: list[str] = []
    kept = 0
    after = None
    while True:
        page = await store.scan_sessions(SessionScan(before=cutoff, agent_id=agent_id, limit=_PAGE, after=after))
        if not page:
            break
        after = (page[-1].last_activity_at, page[-1].id)
        ids = [session.id for session in page]
        protected = await store.sessions_with_checkpoints(ids) if keep_checkpoints else set()
        kept += len(protected)
        doomed.extend(sid for sid in ids if sid not in protected)
    if dry_run:
        return CleanupReport(dry_run=True, sessions=len(doomed), kept_with_checkpoints=kept, session_ids=tuple(doomed))
    totals = [0, 0, 0, 0]
    for start in range(0, len(doomed), _PAGE):
        counts = await store.delete_sessions(doomed[start : start + _PAGE])
        for index, value in enumerate((counts.sessions, counts.entries, counts.checkpoints, counts.summaries)):
            totals[index] += value
    return CleanupReport(
        dry_run=False,
        sessions=totals[0],
        entries=totals[1],
        checkpoints=totals[2],
        summaries=totals[3],
        kept_with_checkpoints=kept,
        session_ids=tuple(doomed),
    )
