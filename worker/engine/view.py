"""Visible ranges of a transcript: clear and checkpoint restore edit ranges, never entries."""

from __future__ import annotations

from schemas import Segment


def open_view(from_seq: int = 1) -> tuple[Segment, ...]:
    return (Segment(start=from_seq),)


def close_view(view: tuple[Segment, ...], last_seq: int) -> tuple[Segment, ...]:
    """The view frozen at `last_seq`: what a checkpoint records. Empty ranges are dropped."""
    closed: list[Segment] = []
    for segment in view:
        end = last_seq if segment.end is None else min(segment.end, last_seq)
        if segment.start <= end:
            closed.append(Segment(start=segment.start, end=end))
    return tuple(closed)


def restored_view(saved: tuple[Segment, ...], last_seq: int) -> tuple[Segment, ...]:
    """The saved ranges, then an open range for entries appended after the restore."""
    return (*saved, Segment(start=last_seq + 1))


def cleared_view(last_seq: int) -> tuple[Segment, ...]:
    return open_view(last_seq + 1)


def newest_first(view: tuple[Segment, ...], last_seq: int) -> list[tuple[int, int]]:
    """Closed (start, end) ranges, newest first, bounded by `last_seq`; empty ones dropped."""
    ranges = [(seg.start, last_seq if seg.end is None else seg.end) for seg in view]
    return [(start, end) for start, end in reversed(ranges) if start <= end]


def visible_count(view: tuple[Segment, ...], last_seq: int) -> int:
    return sum(end - start + 1 for start, end in newest_first(view, last_seq))
