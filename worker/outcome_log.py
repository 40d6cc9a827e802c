"""The record of what each applied event produced, so that a redelivery re-publishes exactly that.

Records are sealed with the transcript codec when encryption is on: they carry reply and command
texts, which are content. The handler records only outcomes that re-applying their event would not
rebuild exactly (Outcome.rebuilt_on_replay), which keeps a second write per chat message off the
hot path.
"""

from __future__ import annotations

from worker.clock import Clock
from worker.outcome import Outcome
from worker.payload import PayloadCodec
from worker.stores.base import SessionStore

# Sealing derives a key per "session"; outcomes have their own, and the event id binds each record.
_SEALING_SCOPE = "outcomes"


class OutcomeLog:
    def __init__(self, store: SessionStore, codec: PayloadCodec, clock: Clock) -> None:
        self._store = store
        self._codec = codec
        self._clock = clock

    async def recorded(self, event_id: str) -> Outcome | None:
        doc = await self._store.get_outcome(event_id)
        if doc is None:
            return None
        return Outcome.model_validate_json(self._codec.open_text(_SEALING_SCOPE, event_id, doc))

    async def record(self, event_id: str, outcome: Outcome) -> None:
        doc = self._codec.seal_text(_SEALING_SCOPE, event_id, outcome.model_dump_json())
        await self._store.save_outcome(event_id, doc, self._clock())
