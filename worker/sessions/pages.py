"""Listing sessions a page at a time, with an opaque cursor (the last item's activity and id)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

from schemas import SessionEntry, SessionPage
from worker.errors import InvalidArgument
from worker.stores.base import SessionQuery, SessionRecords

MAX_PAGE = 500


def encode_cursor(session: SessionEntry) -> str:
    raw = json.dumps([session.last_activity_at.isoformat(), session.id])
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        moment, session_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(moment).astimezone(UTC), str(session_id)
    except (ValueError, TypeError) as exc:
        raise InvalidArgument("invalid page cursor: pass the next_cursor of the previous page") from exc


async def page_of(store: SessionRecords, query: SessionQuery, cursor: str | None) -> SessionPage:
    """One page of `query.limit` sessions after `cursor`; next_cursor is None on the last page."""
    if not 1 <= query.limit <= MAX_PAGE:
        raise InvalidArgument(f"limit must be between 1 and {MAX_PAGE}")
    after = None if cursor is None else decode_cursor(cursor)
    found = await store.list_sessions(replace(query, limit=query.limit + 1, after=after))
    items = tuple(found[: query.limit])
    next_cursor = encode_cursor(items[-1]) if len(found) > query.limit else None
    return SessionPage(items=items, next_cursor=next_cursor)


async def every_session(store: SessionRecords, query: SessionQuery) -> AsyncIterator[SessionEntry]:
    """Every session the query matches, fetched MAX_PAGE at a time."""
    after: tuple[datetime, str] | None = None
    while page := await store.list_sessions(replace(query, limit=MAX_PAGE, after=after)):
        for session in page:
            yield session
        after = (page[-1].last_activity_at, page[-1].id)
