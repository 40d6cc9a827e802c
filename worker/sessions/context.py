"""Context windows: the newest history that fits a token budget, by strategy (recent, smart, summarize).

Cost follows the window, never the transcript: entries are read newest first in small pages and
reading stops as soon as the budget is full; pinned entries and summaries come from bounded
queries. Token counts are the ones stored at ingest; only the digest, new text, is counted here.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from schemas import ContextDefaults, ContextStrategy, SessionEntry, Summary, TranscriptEntry
from schemas.outbound import SummarizeRequest
from schemas.topology import routable
from worker.engine.outcome import derived_id
from worker.engine.render import entry_text
from worker.engine.sealing import open_summary
from worker.engine.view import newest_first
from worker.errors import InvalidArgument
from worker.sessions.transcript import Transcript
from worker.stores.base import HistoryStore, StoredEntry

# Pages start small and double: a small window reads little it does not use, a large one
# still needs only a few queries.
FIRST_PAGE = 16
MAX_PAGE = 256
SUMMARIZE_SHARE = 0.75  # under `summarize`, raw entries get this share; older content the rest
SUMMARY_READS = 32
DIGEST_ENTRIES = 5
DIGEST_SNIPPET_CHARS = 120
DIGEST_PREFIX = "Earlier: "
STRATEGIES: tuple[ContextStrategy, ...] = ("recent", "smart", "summarize")

# LLM chat roles: a tool call is something the assistant said; a tool result answers it.
_LLM_ROLES = {"system": "system", "user": "user", "assistant": "assistant", "tool": "assistant", "tool-result": "tool"}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


def charge(tokens: int) -> int:
    """What an item costs against the budget: at least one token, so a window holds at most
    max_tokens items however many empty entries a transcript has (and reads stay bounded)."""
    return max(1, tokens)


@dataclass(frozen=True, slots=True)
class ContextWindow:
    session_id: str
    strategy: ContextStrategy
    max_tokens: int
    entries: list[TranscriptEntry]  # chronological
    summaries: list[Summary] = field(default_factory=list)  # chronological, the ones used
    digest: str | None = None  # extractive stand-in for `uncovered` until a summary arrives
    total_tokens: int = 0
    uncovered: tuple[int, int] | None = None  # older visible range no used summary covers

    def messages(self) -> list[dict[str, str]]:
        """LLM-style messages: summaries, then the digest, as system messages; then the entries."""
        older = [
            {"role": "system", "content": f"Summary of earlier messages #{s.from_seq}-#{s.to_seq}: {s.content}"}
            for s in self.summaries
        ]
        if self.digest is not None:
            older.append({"role": "system", "content": self.digest})
        return older + [{"role": _LLM_ROLES[e.role], "content": entry_text(e)} for e in self.entries]

    def to_wire(self) -> dict[str, Any]:
        uncovered = None if self.uncovered is None else {"fromSeq": self.uncovered[0], "toSeq": self.uncovered[1]}
        return {
            "sessionId": self.session_id,
            "strategy": self.strategy,
            "maxTokens": self.max_tokens,
            "totalTokens": self.total_tokens,
            "entries": [e.to_wire() for e in self.entries],
            "summaries": [s.to_wire() for s in self.summaries],
            "digest": self.digest,
            "uncovered": uncovered,
            "messages": self.messages(),
        }


def summarize_request(session: SessionEntry, window: ContextWindow) -> SummarizeRequest | None:
    """The request for the window's uncovered range; the same range always gets the same event id."""
    if window.uncovered is None:
        return None
    low, high = window.uncovered
    return SummarizeRequest(
        event_id=derived_id(session.id, f"summarize:{low}:{high}"),
        agent_id=session.agent_id,
        session_id=session.id,
        from_seq=low,
        to_seq=high,
        ordering_key=routable(session.key),
    )


class _Newest:
    """Visible entries newest first, fetched a page at a time only when the caller asks for more."""

    def __init__(self, store: HistoryStore, session_id: str, ranges: list[tuple[int, int]]) -> None:
        self._store = store
        self._session_id = session_id
        self._ranges = list(ranges)
        self._page: list[StoredEntry] = []  # oldest first, so pop() yields the newest
        self._size = FIRST_PAGE

    async def next(self) -> StoredEntry | None:
        while not self._page:
            if not self._ranges:
                return None
            start, end = self._ranges[0]
            page = await self._store.read_entries(self._session_id, start, end, self._size)
            if len(page) < self._size or page[-1].seq <= start:
                self._ranges.pop(0)
            else:
                self._ranges[0] = (start, page[-1].seq - 1)
            self._page = page[::-1]
            self._size = min(self._size * 2, MAX_PAGE)
        return self._page.pop()


def older_runs(ranges: list[tuple[int, int]], below: int) -> list[tuple[int, int]]:
    """Visible seqs below `below` as maximal runs, newest first (a restore can leave adjacent ranges)."""
    runs: list[tuple[int, int]] = []
    for low, high in ranges:
        high = min(high, below - 1)
        if low > high:
            continue
        if runs and runs[-1][0] == high + 1:
            runs[-1] = (low, runs[-1][1])
        else:
            runs.append((low, high))
    return runs


def uncovered_run(runs: list[tuple[int, int]], used: list[Summary]) -> tuple[int, int] | None:
    """The newest visible run no used summary covers (used summaries never overlap)."""
    latest_first = sorted(used, key=lambda s: s.to_seq, reverse=True)
    for low, high in runs:
        top = high
        for summary in latest_first:
            if not low <= summary.from_seq <= summary.to_seq <= high:
                continue
            if summary.to_seq < top:
                return summary.to_seq + 1, top
            top = summary.from_seq - 1
        if top >= low:
            return low, top
    return None


def _snippet(entry: TranscriptEntry) -> str:
    text = " ".join(entry_text(entry).split())
    first = _SENTENCE_END.split(text, maxsplit=1)[0]
    return first if len(first) <= DIGEST_SNIPPET_CHARS else first[: DIGEST_SNIPPET_CHARS - 1] + "…"


def fit_digest(snippets: list[str], room: int, count: Callable[[str], int]) -> tuple[str, int] | None:
    """Drop the oldest snippets, then shorten the last one, until the digest fits `room` tokens."""
    parts = list(snippets)
    for _ in range(len(parts) + 8):
        if not parts:
            return None
        text = DIGEST_PREFIX + " ".join(parts)
        tokens = count(text)
        if tokens <= room:
            return text, tokens
        if len(parts) > 1:
            parts.pop(0)
            continue
        # Tokens grow about linearly with characters: aim a little under the room and re-count.
        keep = int(len(text) * room / tokens * 0.8) - len(DIGEST_PREFIX)
        if keep < 8:
            return None
        parts = [parts[0][:keep] + "…"]
    return None


class _Builder:
    def __init__(self, store: HistoryStore, transcript: Transcript, session: SessionEntry, max_tokens: int) -> None:
        self.store = store
        self.transcript = transcript
        self.session = session
        self.max_tokens = max_tokens
        self.ranges = newest_first(session.view, session.last_seq)
        self.cursor = _Newest(store, session.id, self.ranges)
        self.taken: dict[int, StoredEntry] = {}
        self.used = 0

    def take(self, stored: StoredEntry, limit: int) -> bool:
        cost = charge(stored.token_count)
        if self.used + cost > limit:
            return False
        self.taken[stored.seq] = stored
        self.used += cost
        return True

    async def take_newest(self) -> bool:
        """Take the newest visible entry; False if the transcript shows nothing."""
        newest = await self.cursor.next()
        if newest is None:
            return False
        if not self.take(newest, self.max_tokens):
            raise InvalidArgument(
                f"max_tokens={self.max_tokens} is smaller than the newest entry ({newest.token_count} tokens)"
            )
        return True

    async def fill(self, limit: int) -> bool:
        """Take the newest untaken entries until one does not fit; True if older entries remain."""
        while (stored := await self.cursor.next()) is not None:
            if stored.seq not in self.taken and not self.take(stored, limit):
                return True
        return False

    async def take_pinned(self) -> None:
        """System and important entries below the newest, newest first, until one does not fit."""
        size = FIRST_PAGE
        for start, end in older_runs(self.ranges, min(self.taken)):
            while start <= end:
                page = await self.store.read_pinned(self.session.id, start, end, size)
                for stored in page:
                    if not self.take(stored, self.max_tokens):
                        return
                if len(page) < size:
                    break
                end, size = page[-1].seq - 1, min(size * 2, MAX_PAGE)

    def trim(self, limit: int) -> None:
        """Drop the oldest taken entries until `limit` holds, always keeping the newest."""
        for seq in sorted(self.taken)[:-1]:
            if self.used <= limit:
                return
            self.used -= charge(self.taken.pop(seq).token_count)

    async def older_summaries(self, runs: list[tuple[int, int]]) -> list[Summary]:
        """Visible, non-overlapping summaries before the window, latest-ending first, as many as fit."""
        frontier = min(self.taken)
        used: list[Summary] = []
        for summary in await self.store.summaries_before(self.session.id, frontier, SUMMARY_READS):
            inside = any(low <= summary.from_seq and summary.to_seq <= high for low, high in runs)
            cost = charge(summary.token_count)
            if inside and summary.to_seq < frontier and self.used + cost <= self.max_tokens:
                used.append(summary)
                self.used += cost
                frontier = summary.from_seq
        return [open_summary(self.transcript.codec, summary) for summary in reversed(used)]

    async def digest(self, uncovered: tuple[int, int]) -> str | None:
        room = self.max_tokens - self.used
        if room < 4:  # not even "Earlier: …" fits
            return None
        page = await self.store.read_entries(self.session.id, uncovered[0], uncovered[1], DIGEST_ENTRIES)
        snippets = [f"[{e.role}] {_snippet(e)}" for e in (self.transcript.open(s) for s in reversed(page))]
        fitted = fit_digest(snippets, room, self.transcript.count_tokens)
        if fitted is None:
            return None
        self.used += fitted[1]
        return fitted[0]

    def window(self, strategy: ContextStrategy, **older: Any) -> ContextWindow:
        entries = [self.transcript.open(self.taken[seq]) for seq in sorted(self.taken)]
        return ContextWindow(self.session.id, strategy, self.max_tokens, entries, total_tokens=self.used, **older)


async def _recent(builder: _Builder) -> ContextWindow:
    await builder.fill(builder.max_tokens)
    return builder.window("recent")


async def _smart(builder: _Builder) -> ContextWindow:
    await builder.take_pinned()
    await builder.fill(builder.max_tokens)
    return builder.window("smart")


async def _summarize(builder: _Builder) -> ContextWindow:
    # Everything that fits whole needs no summary; otherwise leave room for the older content.
    if not await builder.fill(builder.max_tokens):
        return builder.window("summarize")
    builder.trim(int(builder.max_tokens * SUMMARIZE_SHARE))
    runs = older_runs(builder.ranges, min(builder.taken))
    summaries = await builder.older_summaries(runs)
    uncovered = uncovered_run(runs, summaries)
    digest = None if uncovered is None else await builder.digest(uncovered)
    return builder.window("summarize", summaries=summaries, digest=digest, uncovered=uncovered)


_BUILDERS: dict[str, Callable[[_Builder], Awaitable[ContextWindow]]] = {
    "recent": _recent,
    "smart": _smart,
    "summarize": _summarize,
}


async def build_window(
    store: HistoryStore, transcript: Transcript, session: SessionEntry, *, max_tokens: int, strategy: ContextStrategy
) -> ContextWindow:
    if strategy not in _BUILDERS:
        raise InvalidArgument(f"unknown context strategy {strategy!r}: use {', '.join(STRATEGIES)}")
    if max_tokens < 1:
        raise InvalidArgument(f"max_tokens must be at least 1, not {max_tokens}")
    builder = _Builder(store, transcript, session, max_tokens)
    if not await builder.take_newest():
        return ContextWindow(session.id, strategy, max_tokens, [])
    return await _BUILDERS[strategy](builder)


async def window_for(
    store: HistoryStore,
    transcript: Transcript,
    session: SessionEntry,
    defaults: ContextDefaults,
    max_tokens: int | None,
    strategy: ContextStrategy | None,
) -> ContextWindow:
    """build_window, with the agent's context defaults for a budget or strategy left unsaid."""
    budget = defaults.max_tokens if max_tokens is None else max_tokens
    return await build_window(store, transcript, session, max_tokens=budget, strategy=strategy or defaults.strategy)
