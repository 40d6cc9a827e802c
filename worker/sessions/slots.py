"""Finding the one active session of a slot: creation, lazy daily/idle resets, manual resets."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from schemas import AgentSettings, ArchiveReason, SessionEntry
from worker.engine.clock import Clock
from worker.engine.delivery import merge_delivery
from worker.engine.keyed_lock import KeyedLock
from worker.engine.resets import ResetDue, reset_of, session_reset_due
from worker.engine.scope import ChatAddress, slot_key
from worker.errors import InvalidArgument, SessionNotFound, StoreConflict
from worker.stores.base import SessionRecords

_RESOLVE_ATTEMPTS = 8


@dataclass(frozen=True, slots=True)
class Resolution:
    """The slot's active session, and the session this call archived on the way, if any."""

    session: SessionEntry
    created: bool
    archived: SessionEntry | None = None
    due: ResetDue | None = None


def new_session_id() -> str:
    return "s_" + secrets.token_hex(8)


class SlotResolver:
    def __init__(self, store: SessionRecords, clock: Clock, locks: KeyedLock) -> None:
        self._store = store
        self._clock = clock
        self._locks = locks

    async def resolve(
        self, settings: AgentSettings, address: ChatAddress, event_id: str | None = None, *, touch: bool = True
    ) -> Resolution:
        """The active session for this address, applying a due daily or idle reset first.

        A session created here records `event_id` as its opener. With `touch`, a new route is
        merged into the session's delivery context here; without, the caller's append does it.
        """
        key = slot_key(settings, address)
        async with self._locks.hold(f"slot:{settings.agent_id}:{key}"):
            return await self._resolve(settings, key, address, event_id, touch)

    async def _resolve(
        self, settings: AgentSettings, key: str, address: ChatAddress, event_id: str | None, touch: bool = True
    ) -> Resolution:
        archived: SessionEntry | None = None
        due: ResetDue | None = None
        for _ in range(_RESOLVE_ATTEMPTS):
            now = self._clock()
            current = await self._store.find_active(settings.agent_id, key)
            if current is not None:
                opened_by_this = event_id is not None and current.opened_by == event_id
                # A session this event opened is its own, however long a store outage kept its retry.
                current_due = None if opened_by_this else session_reset_due(settings.reset, current, now)
                if current_due is None:
                    if archived is None and event_id is not None and opened_by_this:
                        archived, due = await self._reset_by(settings.agent_id, key, event_id)
                    return Resolution(
                        await self._touch_delivery(current, address) if touch else current,
                        created=False,
                        archived=archived,
                        due=due,
                    )
                # Only the caller whose archive succeeds reports the reset: one notice per reset.
                if await self._store.archive_session(current.id, current_due.reason, now, by=event_id):
                    archived, due = current, current_due
                continue
            last = await self._store.last_generation(settings.agent_id, key)
            if archived is None and event_id is not None and last > 0:  # a slot never used has nothing archived
                archived, due = await self._reset_by(settings.agent_id, key, event_id)
            session = await self._create(settings.agent_id, key, address, event_id, last + 1)
            if session is not None:
                return Resolution(session, created=True, archived=archived, due=due)
        raise StoreConflict(f"could not settle slot {key}: too many concurrent changes")

    async def _reset_by(
        self, agent_id: str, key: str, event_id: str
    ) -> tuple[SessionEntry, ResetDue] | tuple[None, None]:
        """The daily or idle reset this event made in an attempt that a fault cut short (after the
        archive, before its notice went out): its retry reports it all the same."""
        archived = await self._archived_by(agent_id, key, event_id)
        due = None if archived is None else reset_of(archived)
        return (None, None) if archived is None or due is None else (archived, due)

    async def _archived_by(self, agent_id: str, key: str, event_id: str) -> SessionEntry | None:
        """The slot's session that this event archived, if it did (in this attempt or an earlier one)."""
        found = await self._store.archived_by(event_id)
        return next((s for s in found if (s.agent_id, s.key) == (agent_id, key)), None)

    async def reset(
        self, settings: AgentSettings, address: ChatAddress, reason: ArchiveReason, event_id: str | None = None
    ) -> Resolution:
        """Archive the slot's active session (if any) and start a new one.

        Replaying the same `event_id` finds the session it opened and changes nothing; it reports
        the session it archived, even when a fault cut the first attempt short.
        """
        key = slot_key(settings, address)
        async with self._locks.hold(f"slot:{settings.agent_id}:{key}"):
            archived = None
            current = await self._store.find_active(settings.agent_id, key)
            if current is not None and event_id is not None and current.opened_by == event_id:
                archived = await self._archived_by(settings.agent_id, key, event_id)
                return Resolution(current, created=False, archived=archived)
            now = self._clock()
            if current is not None and await self._store.archive_session(current.id, reason, now, by=event_id):
                archived = current
            elif current is None and event_id is not None:  # archived by this event's cut-short attempt?
                archived = await self._archived_by(settings.agent_id, key, event_id)
            resolution = await self._resolve(settings, key, address, event_id)
            return Resolution(resolution.session, created=resolution.created, archived=archived)

    async def _create(
        self, agent_id: str, key: str, address: ChatAddress, event_id: str | None, generation: int
    ) -> SessionEntry | None:
        now = self._clock()
        delivery = address.delivery()
        session = SessionEntry(
            id=new_session_id(),
            key=key,
            agent_id=agent_id,
            generation=generation,
            channel=delivery.channel,
            last_channel=delivery.channel,
            last_to=delivery.to,
            last_account_id=delivery.account_id,
            last_thread_id=delivery.thread_id,
            delivery_context=delivery if delivery.channel or delivery.to else None,
            created_at=now,
            updated_at=now,
            last_activity_at=now,
            origin=address.origin(),
            opened_by=event_id,
        )
        # The unique (agent, key, generation) index lets exactly one concurrent creator win.
        return session if await self._store.insert_session(session) else None

    async def restore(self, target: SessionEntry) -> SessionEntry:
        """The session, active: an archived one is made its slot's active session again (read back)."""
        if target.status == "active":
            return target
        await self._reactivate(target)
        restored = await self._store.get_session(target.id)
        if restored is None:
            raise SessionNotFound(f"no session {target.id}")
        return restored

    async def _reactivate(self, target: SessionEntry) -> None:
        """Make an archived session the active one of its slot (the current one is archived, superseded)."""
        async with self._locks.hold(f"slot:{target.agent_id}:{target.key}"):
            now = self._clock()
            current = await self._store.find_active(target.agent_id, target.key)
            if current is not None:
                await self._store.archive_session(current.id, "superseded", now)
            generation = await self._store.last_generation(target.agent_id, target.key) + 1
            if not await self._store.reactivate_session(target.id, generation, now):
                raise InvalidArgument(f"session {target.id} could not be restored; it changed meanwhile")

    async def _touch_delivery(self, session: SessionEntry, address: ChatAddress) -> SessionEntry:
        fresh = address.delivery()
        if not (fresh.channel or fresh.to):
            return session
        merged = merge_delivery(session.delivery_context, fresh)
        if merged == session.delivery_context:
            return session
        now = self._clock()
        await self._store.update_delivery(session.id, merged, now)
        return session.model_copy(
            update={
                "delivery_context": merged,
                "last_channel": merged.channel,
                "last_to": merged.to,
                "last_account_id": merged.account_id,
                "last_thread_id": merged.thread_id,
                "updated_at": now,
            }
        )
