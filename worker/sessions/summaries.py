"""Summaries of a range of entries, which the `summarize` context strategy puts in place of them."""

from __future__ import annotations

import uuid

from schemas import SessionEntry, Summary
from worker.engine.clock import Clock
from worker.engine.sealing import seal_summary
from worker.errors import InvalidArgument
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


async def store_summary(
    store: CheckpointRecords,
    transcript: Transcript,
    clock: Clock,
    summary_of: tuple[str, int, int],
    content: str,
    summary_id: str | None,
) -> Summary:
    """Seal and store a summary of entries from_seq..to_seq of a session; returns it open."""
    session_id, from_seq, to_seq = summary_of
    summary = Summary(
        id=summary_id or f"sum_{uuid.uuid4().hex[:16]}",
        session_id=session_id,
        from_seq=from_seq,
        to_seq=to_seq,
        content=content,
        token_count=transcript.count_tokens(content),
        created_at=clock(),
    )
    await store.insert_summary(seal_summary(transcript.codec, summary))
    return summary
