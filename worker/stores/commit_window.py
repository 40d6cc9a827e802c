"""How long a group commit waits for company before it starts: the stores' commit delay.

Both stores commit writes in groups (worker/stores/sqlite_db.py, worker/stores/mongo_appends.py):
the writes that arrive while one group is being written go together in the next. Under heavy load
that makes large groups; at a moderate rate it does not, since every write finds the writer idle
and goes alone, and each group costs its thread hand-offs, its transaction and its wake-ups in
full. At half the worker's maximum rate that doubled the CPU a message cost against a drain.

So a group may wait a short window before it starts, for the writes of other lanes to join it, as
PostgreSQL's commit_delay does. Like PostgreSQL's commit_siblings it only waits when waiting has
company to gain: after a group of two writes or more. A lone writer (a CLI command, one chat's
burst) never waits, since each of its writes waits for the one before, and its groups are all of
one; and once the load falls to a trickle, the next group of one stops the waiting.
"""

from __future__ import annotations


class CommitWindow:
    def __init__(self, seconds: float) -> None:
        self.seconds = max(seconds, 0.0)
        self._last_group = 0

    def delay(self) -> float:
        """How long the next group waits before it starts: the window after a group of several, else 0."""
        return self.seconds if self._last_group > 1 else 0.0

    def committed(self, writes: int) -> None:
        """A group of `writes` writes was committed (or failed)."""
        self._last_group = writes
