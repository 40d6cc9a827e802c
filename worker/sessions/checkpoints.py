"""Checkpoints: save and restore a session's visible history by ranges, at constant cost."""

from __future__ import annotations

import secrets

from schemas import Checkpoint, SessionEntry
from worker.engine.clock import Clock
from worker.engine.keyed_lock import KeyedLock
from worker.engine.payload import PayloadCodec
from worker.engine.sealing import open_checkpoint, seal_checkpoint
from worker.engine.view import close_view, restored_view
from worker.errors import CheckpointNotFound, InvalidArgument, SessionNotFound, StoreConflict
from worker.sessions.deletions import DeletionNotes
from worker.sessions.views import SessionViews
from worker.stores.base import CheckpointStore, SessionQuery

MAX_NAME = 200
MAX_DESCRIPTION = 2000
_SLOT_SESSIONS_LIMIT = 1000


def new_checkpoint_id() -> str:
    return "cp_" + secrets.token_hex(5)


class CheckpointBook:
    def __init__(
        self,
        store: CheckpointStore,
        clock: Clock,
        locks: KeyedLock,
        codec: PayloadCodec,
        *,
        views: SessionViews,
        notes: DeletionNotes,
    ) -> None:
        self._store = store
        self._clock = clock
        self._locks = locks
        self._codec = codec
        self._views = views
        self._notes = notes

    async def save(
        self, session_id: str, name: str, description: str | None, checkpoint_id: str | None = None
    ) -> Checkpoint:
        """Save the session's visible history; with `checkpoint_id`, a replay returns the first save."""
        name = name.strip()
        if not name:
            raise InvalidArgument('a checkpoint needs a name, e.g. /checkpoint save "before refactor"')
        if len(name) > MAX_NAME or (description is not None and len(description) > MAX_DESCRIPTION):
            raise InvalidArgument(
                f"checkpoint name is limited to {MAX_NAME} and description to {MAX_DESCRIPTION} characters"
            )
        async with self._locks.hold(session_id):
            if checkpoint_id is not None:
                existing = await self._store.get_checkpoint(checkpoint_id)
                if existing is not None and existing.session_id == session_id:
                    return open_checkpoint(self._codec, existing)
            session = await self._session(session_id)
            checkpoint = Checkpoint(
                id=checkpoint_id or new_checkpoint_id(),
                session_id=session.id,
                name=name,
                description=(description or "").strip() or None,
                message_count=session.message_count,
                created_at=self._clock(),
                view=close_view(session.view, session.last_seq),
                last_seq=session.last_seq,
            )
            await self._store.insert_checkpoint(seal_checkpoint(self._codec, checkpoint))
        return checkpoint

    async def slot_sessions(self, session: SessionEntry) -> list[SessionEntry]:
        return await self.sessions_of_slot(session.agent_id, session.key)

    async def sessions_of_slot(self, agent_id: str, key: str) -> list[SessionEntry]:
        query = SessionQuery(agent_id=agent_id, key=key, limit=_SLOT_SESSIONS_LIMIT)
        return await self._store.list_sessions(query)

    async def list_of(self, session_ids: list[str]) -> list[Checkpoint]:
        return [
            open_checkpoint(self._codec, checkpoint) for checkpoint in await self._store.list_checkpoints(session_ids)
        ]

    async def list_for(self, session_id: str, *, whole_slot: bool) -> list[Checkpoint]:
        session = await self._session(session_id)
        ids = [member.id for member in await self.slot_sessions(session)] if whole_slot else [session.id]
        return await self.list_of(ids)

    async def find(self, checkpoint_id: str, within: SessionEntry | None) -> tuple[Checkpoint, SessionEntry]:
        """The checkpoint and its session; with `within`, only if it belongs to that session's slot."""
        checkpoint = await self._store.get_checkpoint(checkpoint_id)
        owner = None if checkpoint is None else await self._store.get_session(checkpoint.session_id)
        if checkpoint is None or owner is None:
            raise _not_found(checkpoint_id)
        if within is not None and (owner.agent_id, owner.key) != (within.agent_id, within.key):
            # Same message as a missing id: another slot's checkpoints are not even confirmed to exist.
            raise _not_found(checkpoint_id)
        return open_checkpoint(self._codec, checkpoint), owner

    async def apply(self, checkpoint: Checkpoint, session_id: str) -> SessionEntry:
        """Make the session's visible history exactly what it was when the checkpoint was saved."""
        restored = await self._views.change(
            session_id, lambda session: (restored_view(checkpoint.view, session.last_seq), checkpoint.message_count)
        )
        if restored is None:
            raise StoreConflict(f"session {session_id} changed during the restore; try again")
        return restored

    async def delete(self, checkpoint_id: str, within: SessionEntry | None, key: str | None) -> None:
        """Delete it (with `within`, only one of that session's slot). Noted first under the event
        `key`, so that the key's retry, after a fault cut its delete short, succeeds too."""
        try:
            await self.find(checkpoint_id, within)
        except CheckpointNotFound:
            if key is not None and await self._notes.noted(key) == {"checkpoint": checkpoint_id}:
                return  # deleted by this event's earlier attempt
            raise
        if key is not None:
            await self._notes.note(key, {"checkpoint": checkpoint_id})
        if not await self._store.delete_checkpoint(checkpoint_id):
            raise _not_found(checkpoint_id)

    async def _session(self, session_id: str) -> SessionEntry:
        session = await self._store.get_session(session_id)
        if session is None:
            raise SessionNotFound(f"no session {session_id}")
        return session


def _not_found(checkpoint_id: str) -> CheckpointNotFound:
    return CheckpointNotFound(f"no checkpoint {checkpoint_id}; /checkpoint list shows yours")
