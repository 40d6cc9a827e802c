"""The record of what each applied event produced, so that a duplicate re-publishes exactly that.

Records are keyed by the event's scoped key (worker.engine.idempotency) and carry its fingerprint, so the
same key with other content is told apart as a conflict. They are sealed with the transcript codec
when encryption is on: they carry reply and command texts, which are content. The handler records
only outcomes that re-applying their event would not rebuild exactly (Outcome.rebuilt_on_replay),
which keeps a second write per chat message off the hot path.

Stores written before keys were scoped hold records under bare event ids until they age out: for
the events that only a record can recognise (commands), a key not found is looked up bare too, and
such a record counts only if what it produced went to the same chat or session.
"""

from __future__ import annotations

from schemas.delivery import normalize_channel
from schemas.events import InboundEvent
from worker.engine.clock import Clock
from worker.engine.idempotency import CHAT_EVENTS, Identity, bare_id, blurred, same_meaning
from worker.engine.outcome import Outcome
from worker.engine.payload import PayloadCodec
from worker.errors import EventIdConflict
from worker.stores.base import OutcomeRecords, RecordedOutcome

# Sealing derives a key per "session"; outcomes have their own, and the event id binds each record.
_SEALING_SCOPE = "outcomes"


class OutcomeLog:
    def __init__(self, store: OutcomeRecords, codec: PayloadCodec, clock: Clock) -> None:
        self._store = store
        self._codec = codec
        self._clock = clock

    async def recorded(self, identity: Identity, belongs: OutcomeFilter | None = None) -> Outcome | None:
        """The outcome recorded for this event, if it was applied; EventIdConflict if the key was
        used by an event that meant something else."""
        record = await self._store.get_outcome(identity.key)
        if record is not None:
            if not same_meaning(record.fingerprint, identity.fingerprint):
                raise EventIdConflict(f"event id {identity.event_id!r} was used before for another event")
            return self._open(identity.key, record)
        if belongs is None:
            return None
        legacy = await self._store.get_outcome(identity.event_id)
        if legacy is None:
            return None
        outcome = self._open(identity.event_id, legacy)
        return outcome if belongs(outcome) else None

    async def record(self, identity: Identity, outcome: Outcome) -> None:
        doc = self._codec.seal_text(_SEALING_SCOPE, identity.event_id, outcome.model_dump_json())
        fingerprint = blurred(identity.fingerprint) if outcome.held_secret else identity.fingerprint
        await self._store.save_outcome(identity.key, doc, self._clock(), fingerprint)

    def _open(self, key: str, record: RecordedOutcome) -> Outcome:
        # Sealed under the bare event id, so records moved to scoped keys still open.
        return Outcome.model_validate_json(self._codec.open_text(_SEALING_SCOPE, bare_id(key), record.doc))


class OutcomeFilter:
    """Whether a legacy (bare-keyed) record is this event's: its events went where this one's go."""

    def __init__(self, session_id: str | None = None, route: tuple[str | None, str | None] | None = None) -> None:
        self._session_id = session_id
        self._route = route

    def __call__(self, outcome: Outcome) -> bool:
        if self._route is not None:
            routes = [*(r.delivery for r in outcome.replies), *(n.delivery for n in outcome.notices)]
            routes += [turn.delivery for turn in outcome.turns]
            return all(route is not None and (route.channel, route.to) == self._route for route in routes)
        sessions = [*(r.session_id for r in outcome.replies), *(n.session_id for n in outcome.notices)]
        sessions += [turn.session_id for turn in outcome.turns]
        return all(session_id == self._session_id for session_id in sessions)


def legacy_filter(event: InboundEvent) -> OutcomeFilter:
    """Which bare-keyed record could be this event's: one that went to its chat, or its session."""
    if isinstance(event, CHAT_EVENTS):
        source = event.source
        return OutcomeFilter(route=(normalize_channel(source.channel), source.peer_id or source.user_id))
    return OutcomeFilter(session_id=event.session_id)
