"""What an event deletes, noted before it deletes: its retry after a fault says what was done.

A delete leaves nothing behind for a retry to find, so a retry (after a full disk, a lost store, a
worker killed between the delete and the outcome's record) would answer "not found" or nothing.
The note is written first, under a key derived from the event's, among the outcome records (and
pruned with them); it holds ids and counts, never content.
"""

from __future__ import annotations

import json
from typing import Any

from worker.engine.clock import Clock
from worker.stores.base import OutcomeRecords


class DeletionNotes:
    def __init__(self, store: OutcomeRecords, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def note(self, key: str, what: dict[str, Any]) -> None:
        """Note what the event `key` is about to delete; an earlier attempt's note is kept (it
        counted before a delete that may have been cut short halfway)."""
        await self._store.save_outcome(_note_key(key), json.dumps(what), self._clock(), None)

    async def noted(self, key: str) -> dict[str, Any] | None:
        """What the event `key` noted it would delete, if it got that far."""
        record = await self._store.get_outcome(_note_key(key))
        return None if record is None else dict(json.loads(record.doc))


def _note_key(key: str) -> str:
    # Holds a control character that no event id on the wire may hold and no scoped key uses, so
    # no event's record (scoped, or a legacy bare id) is read as a note, nor a note as an outcome.
    return f"{key}{_NOTE}"


_NOTE = "\x1edeletes"
