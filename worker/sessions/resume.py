"""Undoing a reset: a slot's earlier session made active again, with what arrived since.

The session it replaces is archived (reason resumed-other) and its visible entries, the messages
that arrived since the reset, are appended in order at the end of the resumed session: only those
are copied (re-sealed under the resumed session), never the resumed session's own transcript.
Idempotent on the event's key: the resumed session records it as its opener, the replaced one
as its archiver, and each carried entry's id derives from the entry it carries. So a retry after a
fault cut an attempt short (after the archive, or after the reactivation) finishes that attempt:
the same target, the same replaced session, the same entries carried.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas import SessionEntry
from worker.engine.clock import Clock
from worker.engine.idempotency import scoped, session_scope
from worker.engine.keyed_lock import KeyedLock
from worker.errors import InvalidArgument, SessionNotFound
from worker.sessions.transcript import Draft, Transcript
from worker.stores.base import SessionQuery, SessionRecords

_SLOT_SESSIONS = 200


@dataclass(frozen=True, slots=True)
class Resumed:
    session: SessionEntry  # the resumed session, active again
    replaced: SessionEntry | None  # the session it replaces, now archived (resumed-other)
    carried: int  # entries of the replaced session appended at the end of the resumed one


class Resumer:
    def __init__(self, store: SessionRecords, transcript: Transcript, clock: Clock, locks: KeyedLock) -> None:
        self._store = store
        self._transcript = transcript
        self._clock = clock
        self._locks = locks

    async def resume(self, agent_id: str, slot: str, target_id: str | None, key: str | None) -> Resumed:
        """Make `target_id` (default: the slot's most recently archived session) active again."""
        async with self._locks.hold(f"slot:{agent_id}:{slot}"):
            members = await self._store.list_sessions(SessionQuery(agent_id=agent_id, key=slot, limit=_SLOT_SESSIONS))
            current = next((m for m in members if m.status == "active"), None)
            # The session an earlier attempt of this event replaced, if one got that far.
            earlier = _replaced_by(members, key)
            if current is not None and key is not None and current.opened_by == key:
                return await self._carry(current, earlier)  # a retry: finish what it began
            replaced = current or earlier
            target = _target(members, replaced, target_id)
            now = self._clock()
            if current is not None:
                await self._store.archive_session(current.id, "resumed-other", now, by=key)
            generation = await self._store.last_generation(agent_id, slot) + 1
            if not await self._store.reactivate_session(target.id, generation, now, opened_by=key):
                raise InvalidArgument(f"session {target.id} could not be resumed; it changed meanwhile, try again")
            resumed = await self._store.get_session(target.id)
            if resumed is None:
                raise SessionNotFound(f"no session {target.id}")
            return await self._carry(resumed, replaced)

    async def _carry(self, target: SessionEntry, replaced: SessionEntry | None) -> Resumed:
        if replaced is None:
            return Resumed(target, None, 0)
        carried = 0
        for entry in await self._transcript.all_visible(replaced):
            draft = Draft(
                role=entry.role,
                content=entry.content,
                tool=entry.tool,
                args=entry.args,
                result=entry.result,
                usage=entry.usage,
                important=entry.important,
                event_id=scoped(f"resumed:{replaced.id}:{entry.seq}", session_scope(target.id)),
                delivery=entry.delivery,
            )
            await self._transcript.append_once(target.id, draft)
            carried += 1
        fresh = await self._store.get_session(target.id)
        return Resumed(fresh or target, replaced, carried)


def _target(members: list[SessionEntry], replaced: SessionEntry | None, target_id: str | None) -> SessionEntry:
    if target_id is not None:
        found = next((m for m in members if m.id == target_id), None)
        if found is None:
            raise SessionNotFound(f"no session {target_id} in this chat; /session list shows yours")
        if found.status == "active":
            raise InvalidArgument(f"session {target_id} is the active one already")
        return found
    replaced_id = None if replaced is None else replaced.id
    earlier = [m for m in members if m.status == "archived" and m.archived_at is not None and m.id != replaced_id]
    if not earlier:
        raise InvalidArgument("there is no earlier session to resume in this chat")
    return max(earlier, key=lambda m: (m.archived_at, m.id))


def _replaced_by(members: list[SessionEntry], key: str | None) -> SessionEntry | None:
    """The session that this event's resume archived (as resumed-other), if it did."""
    if key is None:
        return None
    return next((m for m in members if m.archived_reason == "resumed-other" and m.archived_by == key), None)
