"""Summaries of a range of entries, which the `summarize` context strategy puts in place of them."""

from __future__ import annotations

import uuid

from schemas import SessionEntry, Summary
from worker.engine.clock import Clock
from worker.engine.redaction import Findings
from worker.engine.sealing import seal_summary
from worker.errors import InvalidArgument
from worker.sessions.redacting import Redactions
from worker.sessions.transcript import Transcript
from worker.stores.base import CheckpointRecords


def check_summary(session: SessionEntry, span: tuple[int, int], content: str) -> None:
    """InvalidArgument unless `span` lies within the transcript and `content` says something."""
    from_seq, to_seq = span
    if not 1 <= from_seq <= to_seq <= session.last_seq:
        raise InvalidArgument(
            f"summary range {from_seq}..{to_seq} is outside the transcript (entries 1..{session.last_seq})"
        )
    if not content.strip():
        raise InvalidArgument("a summary needs text")


class Summaries:
    def __init__(self, store: CheckpointRecords, transcript: Transcript, clock: Clock, redactions: Redactions) -> None:
        self._store = store
        self._transcript = transcript
        self._clock = clock
        self._redactions = redactions

    async def add(self, session: SessionEntry, span: tuple[int, int], content: str, summary_id: str | None) -> Summary:
        """Check the summary of entries from_seq..to_seq, redact its secrets, seal and store it; returns it open."""
        check_summary(session, span, content)
        content = await self._redactions.text(session.agent_id, content, Findings())
        from_seq, to_seq = span
        summary = Summary(
            id=summary_id or f"sum_{uuid.uuid4().hex[:16]}",
            session_id=session.id,
            from_seq=from_seq,
            to_seq=to_seq,
            content=content,
            token_count=self._transcript.count_tokens(content),
            created_at=self._clock(),
        )
        await self._store.insert_summary(seal_summary(self._transcript.codec, summary))
        return summary
