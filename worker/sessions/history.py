"""A session's history as its readers ask for it (entries, markdown, text, an export), and its clearing."""

from __future__ import annotations

from typing import Literal

from schemas import SessionEntry, TranscriptEntry
from worker.engine.render import as_markdown, as_text, export_json, export_jsonl, export_markdown
from worker.engine.view import cleared_view
from worker.errors import InvalidArgument
from worker.sessions.transcript import Transcript
from worker.sessions.views import SessionViews
from worker.stores.base import EntryRecords

HistoryFormat = Literal["messages", "markdown", "text"]
ExportFormat = Literal["markdown", "json", "jsonl"]


class History:
    def __init__(self, store: EntryRecords, transcript: Transcript, views: SessionViews) -> None:
        self._store = store
        self._transcript = transcript
        self._views = views

    async def newest(self, session: SessionEntry, limit: int, format: HistoryFormat) -> list[TranscriptEntry] | str:
        """The newest `limit` visible entries, themselves (messages) or rendered as markdown or text."""
        entries = await self._transcript.newest(session, limit)
        if format == "messages":
            return entries
        if format == "markdown":
            return as_markdown(entries)
        if format == "text":
            return as_text(entries)
        raise InvalidArgument(f"unknown history format {format!r}: use messages, markdown or text")

    async def export(self, session: SessionEntry, format: ExportFormat, *, include_metadata: bool) -> str:
        """Every visible entry as one markdown, JSON or JSON Lines document."""
        entries = await self._transcript.all_visible(session)
        if format == "markdown":
            return export_markdown(session, entries, include_metadata=include_metadata)
        if format == "json":
            return export_json(session, entries, include_metadata=include_metadata)
        if format == "jsonl":
            return export_jsonl(entries, include_metadata=include_metadata)
        raise InvalidArgument(f"unknown export format {format!r}: use markdown, json or jsonl")

    async def clear(self, session_id: str) -> SessionEntry:
        """Hide every entry so far: a view that starts after the last one; nothing is deleted."""
        cleared = await self._views.change(session_id, lambda session: (cleared_view(session.last_seq), 0))
        if cleared is None:
            raise InvalidArgument(f"session {session_id} changed during the clear; try again")
        return cleared

    async def mark_important(self, session_id: str, seq: int, important: bool) -> None:
        """Pin the entry (or unpin it): the smart context strategy keeps important entries."""
        if not await self._store.set_important(session_id, seq, important):
            raise InvalidArgument(f"session {session_id} has no entry #{seq}")
