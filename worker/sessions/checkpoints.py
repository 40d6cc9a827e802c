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
from worker.stores.base import CheckpointStore, SessionQuery, ViewChange

MAX_NAME = 200
MAX_DESCRIPTION = 2000
_SLOT_SESSIONS_LIMIT = 1000


def new_checkpoint_id() -> str:
    return "cp_" + secrets.token_hex(5)


class CheckpointBook:
    def __init__(self, store: CheckpointStore, clock: Clock, locks: KeyedLock, codec: PayloadCodec) -> None:
        self._store = store
        self._clock = clock
        self._locks = locks
        self._codec = codec

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
            raise CheckpointNotFound(f"no checkpoint {checkpoint_id}; /checkpoint list shows yours")
        if within is not None and (owner.agent_id, owner.key) != (within.agent_id, within.key):
            # Same message as a missing id: another slot's checkpoints are not even confirmed to exist.
            raise CheckpointNotFound(f"no checkpoint {checkpoint_id}; /checkpoint list shows yours")
        return open_checkpoint(self._codec, checkpoint), owner

    async def apply(self, checkpoint: Checkpoint, session_id: str) -> SessionEntry:
        """Make the session's visible history exactly what it was when the checkpoint was saved."""
        async with self._locks.hold(session_id):
            session = await self._session(session_id)
            change = ViewChange(
                view=restored_view(checkpoint.view, session.last_seq),
                message_count=checkpoint.message_count,
                at=self._clock(),
                expected_version=session.version,
            )
            if not await self._store.change_view(session.id, change):
                raise StoreConflict(f"session {session.id} changed during the restore; try again")
            return session.model_copy(
                update={"view": change.view, "message_count": change.message_count, "updated_at": change.at}
            )

    async def delete(self, checkpoint_id: str) -> None:
        if not await self._store.delete_checkpoint(checkpoint_id):
            raise CheckpointNotFound(f"no checkpoint {checkpoint_id}; /checkpoint list shows yours")

    async def _session(self, session_id: str) -> SessionEntry:
        session = await self._store.get_session(session_id)
        if session is None:
            raise SessionNotFound(f"no session {session_id}")
        return session
