"""Where a delivery's time goes: monotonic timestamps carried with one message through its stages.

Off unless the worker runs with a stage log (the benchmark asks for one): then each delivery
carries a Trace, made current for its handling, and the code on the path marks the end of each
stage in it. Without one, a mark is a context-variable lookup that finds nothing. Timestamps are
time.perf_counter(), which on Linux is CLOCK_MONOTONIC: comparable across processes, so the
benchmark can set them against the moments it published and received.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

# The marks, in the order a chat message passes them (a stage ends at its mark).
RECEIVED = "received"  # the delivery reached the shard's consumer
STARTED = "started"  # its lane began handling it
DECODED = "decoded"
LOOKED_UP = "looked_up"  # the outcome record was consulted (a replay or a conflict?)
COMMIT_START = "commit_start"  # its first write was handed to the store's group commit
COMMITTED = "committed"  # its last write was committed
PUBLISH_START = "publish_start"  # its first outcome event went to the channel
CONFIRMED = "confirmed"  # every outcome event was confirmed by the broker
ACKED = "acked"  # its ack frame was queued for the socket
MARKS = (RECEIVED, STARTED, DECODED, LOOKED_UP, COMMIT_START, COMMITTED, PUBLISH_START, CONFIRMED, ACKED)
_FIRST_ONLY = frozenset({COMMIT_START, PUBLISH_START})


class Trace:
    """One delivery's marks: stage name -> perf_counter() at its end."""

    __slots__ = ("event_id", "marks")

    def __init__(self, event_id: str, received: float) -> None:
        self.event_id = event_id
        self.marks: dict[str, float] = {RECEIVED: received}

    def mark(self, stage: str, at: float | None = None) -> None:
        """Record the end of `stage` (now, or `at`); the start marks keep their first moment, the
        end marks their last (a message may write or publish more than once)."""
        if stage in _FIRST_ONLY and stage in self.marks:
            return
        self.marks[stage] = time.perf_counter() if at is None else at


_current: ContextVar[Trace | None] = ContextVar("stage_trace", default=None)


def current() -> Trace | None:
    """The trace of the delivery being handled in this context, if stages are being traced."""
    return _current.get()


def mark(stage: str) -> None:
    """Mark the end of `stage` for the delivery handled in this context (nothing when untraced)."""
    trace = _current.get()
    if trace is not None:
        trace.mark(stage)


@contextmanager
def tracing(trace: Trace | None) -> Iterator[None]:
    """Make `trace` current for the body (and the tasks it starts); None leaves the context alone."""
    if trace is None:
        yield
        return
    token = _current.set(trace)
    try:
        yield
    finally:
        _current.reset(token)
