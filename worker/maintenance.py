"""Cleanup of old sessions together with their entries, checkpoints and summaries."""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas import SessionEntry, parse_duration
from worker.clock import Clock
from worker.errors import InvalidArgument
from worker.stores.base import DeletedCounts, SessionScan, SessionStore

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


@dataclass(frozen=True, slots=True)
class CleanupRequest:
    older_than: str
    keep_checkpoints: bool
    agent_id: str | None
    dry_run: bool
    include_active: bool = False


async def cleanup(store: SessionStore, clock: Clock, request: CleanupRequest) -> CleanupReport:
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


async def _candidates(store: SessionStore, cutoff: object, request: CleanupRequest) -> tuple[list[str], dict[str, int]]:
    """The sessions to delete, and those kept for their checkpoints with the last entry they need."""
    doomed: list[str] = []
    kept: dict[str, int] = {}
    after = None
    status = None if request.include_active else "archived"
    while True:
        scan = SessionScan(before=cutoff, agent_id=request.agent_id, status=status, limit=_PAGE, after=after)  # type: ignore[arg-type]
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
