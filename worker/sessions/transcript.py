"""Appending and reading transcript entries: sequence numbers, token counts, sealing, views."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from schemas import ROLES, DeliveryContext, Role, SessionEntry, TranscriptEntry, Usage
from worker.engine.clock import Clock
from worker.engine.delivery import merge_delivery
from worker.engine.idempotency import bare_id, same_meaning
from worker.engine.keyed_lock import KeyedLock
from worker.engine.payload import PayloadCodec, Sealed, pack_payload, unpack_payload
from worker.engine.tokens import TokenCount, TokenCounter
from worker.engine.view import newest_first
from worker.errors import (
    ContentTooLarge,
    EventIdConflict,
    InvalidArgument,
    SessionNotActive,
    SessionNotFound,
    StoreConflict,
)
from worker.stores.base import DuplicateEvent, EntryRecords, SessionUpdate, StoredEntry

_APPEND_ATTEMPTS = 12
_NO_USAGE = Usage()
SessionLookup = Callable[[str], Awaitable[SessionEntry | None]]
EXPORT_PAGE = 1000


@dataclass(frozen=True, slots=True)
class Draft:
    """An entry about to be appended: what the caller said, before seq and sealing."""

    role: Role
    content: str | None = None
    tool: str | None = None
    args: dict[str, Any] | None = None
    result: Any = None
    usage: Usage | None = None
    important: bool = False
    event_id: str | None = None
    delivery: DeliveryContext | None = None
    fingerprint: str | None = None  # what the event meant: a second event with this id must match


def token_text(draft: Draft) -> str:
    parts = [draft.content or "", draft.tool or ""]
    if draft.args is not None:
        parts.append(json.dumps(draft.args, ensure_ascii=False))
    if draft.result is not None:
        parts.append(draft.result if isinstance(draft.result, str) else json.dumps(draft.result, ensure_ascii=False))
    return " ".join(part for part in parts if part)


class Transcript:
    def __init__(
        self,
        store: EntryRecords,
        codec: PayloadCodec,
        counter: TokenCounter,
        clock: Clock,
        locks: KeyedLock,
        *,
        max_content_bytes: int,
        lookup: SessionLookup,
    ) -> None:
        self._store = store
        # How appends read their session: the cache's copy (guarded by its version).
        self._lookup = lookup
        self._codec = codec
        self._counter = counter
        self._clock = clock
        self._locks = locks
        self._max_content_bytes = max_content_bytes

    @property
    def codec(self) -> PayloadCodec:
        return self._codec

    async def current_session(self, session_id: str) -> SessionEntry | None:
        """The session as appends see it (a worker's cached copy, true after its own writes)."""
        return await self._lookup(session_id)

    def count_tokens(self, text: str) -> int:
        return self._counter.count(text)

    def _check(self, draft: Draft) -> bytes:
        if draft.role not in ROLES:
            raise InvalidArgument(f"unknown role {draft.role!r}: use one of {', '.join(ROLES)}")
        if draft.role == "tool" and not draft.tool:
            raise InvalidArgument("a tool entry needs the tool's name")
        payload = pack_payload(draft.content, draft.tool, draft.args, draft.result)
        if len(payload) > self._max_content_bytes:
            raise ContentTooLarge(
                f"message of {len(payload)} bytes is over the limit of {self._max_content_bytes} bytes"
            )
        return payload

    async def append(self, session_id: str, draft: Draft, *, allow_archived: bool = False) -> TranscriptEntry:
        entry, _ = await self.append_once(session_id, draft, allow_archived=allow_archived)
        return entry

    async def append_once(
        self, session_id: str, draft: Draft, *, allow_archived: bool = False
    ) -> tuple[TranscriptEntry, bool]:
        """Append the draft unless its event's entry is stored already: (the entry, whether it was).

        The event id is the key as given (the worker passes scoped keys, worker.engine.idempotency); the
        same key with another fingerprint raises EventIdConflict.
        """
        payload = self._check(draft)
        # Counted by the store as it writes (off the event loop where it can be); made once.
        tokens = TokenCount(self._counter, token_text(draft))
        event_id = draft.event_id or uuid.uuid4().hex
        async with self._locks.hold(session_id):
            for attempt in range(_APPEND_ATTEMPTS):
                session = await self._writable_session(session_id, allow_archived)
                entry = self._stored(session, draft, payload, event_id)
                update = SessionUpdate(
                    seq=entry.seq,
                    at=entry.timestamp,
                    version=session.version,
                    input_tokens=entry.input_tokens,
                    output_tokens=entry.output_tokens,
                    stored_bytes=len(entry.payload),
                    agent_id=session.agent_id,
                    delivery=None
                    if draft.delivery is None
                    else merge_delivery(session.delivery_context, draft.delivery),
                    require_active=not allow_archived,
                )
                try:
                    await self._store.append_entry(entry, update, tokens)
                except DuplicateEvent:
                    return await self._existing(event_id, draft.fingerprint), True
                except StoreConflict:
                    # Another process appended to this session; re-read and take the next number,
                    # after a random pause, so that the writer who keeps winning does not starve this one.
                    await asyncio.sleep(random.uniform(0, 0.005 * 2 ** min(attempt, 5)))  # noqa: S311
                    continue
                return self._as_written(entry, draft, tokens()), False
        raise StoreConflict(f"could not append to session {session_id}: too many concurrent writers")

    async def _existing(self, event_id: str, fingerprint: str | None) -> TranscriptEntry:
        stored = await self._store.find_entry_by_event(event_id)
        if stored is None:
            raise StoreConflict(f"event {event_id} was reported stored but cannot be read back")
        if fingerprint is not None and not same_meaning(stored.fingerprint, fingerprint):
            raise EventIdConflict(
                f"event id {bare_id(event_id)!r} was used before in this chat or session for another event"
            )
        return self.open(stored)

    async def _writable_session(self, session_id: str, allow_archived: bool) -> SessionEntry:
        session = await self._lookup(session_id)
        if session is None:
            raise SessionNotFound(f"no session {session_id}")
        if session.status != "active" and not allow_archived:
            raise SessionNotActive(
                f"session {session_id} is archived ({session.archived_reason}); start or restore one"
            )
        return session

    def _stored(self, session: SessionEntry, draft: Draft, payload: bytes, event_id: str) -> StoredEntry:
        """The entry to append; its token count is the TokenCount handed to the store beside it."""
        seq = session.last_seq + 1
        sealed = self._codec.seal(session.id, seq, payload)
        usage = draft.usage or _NO_USAGE
        return StoredEntry(
            session_id=session.id,
            seq=seq,
            event_id=event_id,
            role=draft.role,
            timestamp=self._clock(),
            token_count=0,
            important=draft.important,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            has_usage=draft.usage is not None,
            delivery=draft.delivery,
            payload=sealed.blob,
            key_id=sealed.key_id,
            fingerprint=draft.fingerprint,
        )

    def _as_written(self, stored: StoredEntry, draft: Draft, token_count: int) -> TranscriptEntry:
        """The entry just appended, from what the caller gave (no need to decrypt our own write).
        Validating it is cheaper here than pydantic's model_construct, and this runs per message."""
        return TranscriptEntry(
            session_id=stored.session_id,
            seq=stored.seq,
            event_id=bare_id(stored.event_id),
            role=stored.role,
            timestamp=stored.timestamp,
            content=draft.content,
            tool=draft.tool,
            args=draft.args,
            result=draft.result,
            usage=draft.usage,
            token_count=token_count,
            important=stored.important,
            delivery=stored.delivery,
        )

    def open(self, stored: StoredEntry) -> TranscriptEntry:
        """Unseal and decode one stored entry."""
        plain = self._codec.open(stored.session_id, stored.seq, Sealed(stored.payload, stored.key_id))
        body = unpack_payload(plain)
        usage = (
            Usage(input_tokens=stored.input_tokens, output_tokens=stored.output_tokens) if stored.has_usage else None
        )
        return TranscriptEntry(
            session_id=stored.session_id,
            seq=stored.seq,
            event_id=bare_id(stored.event_id),
            role=stored.role,
            timestamp=stored.timestamp,
            content=body["content"],
            tool=body["tool"],
            args=body["args"],
            result=body["result"],
            usage=usage,
            token_count=stored.token_count,
            important=stored.important,
            delivery=stored.delivery,
        )

    async def newest(self, session: SessionEntry, limit: int) -> list[TranscriptEntry]:
        """The newest `limit` visible entries, oldest first."""
        if limit < 1:
            raise InvalidArgument("limit must be at least 1")
        found: list[StoredEntry] = []
        for start, end in newest_first(session.view, session.last_seq):
            found.extend(await self._store.read_entries(session.id, start, end, limit - len(found)))
            if len(found) >= limit:
                break
        return [self.open(stored) for stored in reversed(found)]

    async def all_visible(self, session: SessionEntry) -> list[TranscriptEntry]:
        """Every visible entry, oldest first, read in bounded pages."""
        entries: list[TranscriptEntry] = []
        for start, end in reversed(newest_first(session.view, session.last_seq)):
            for low in range(start, end + 1, EXPORT_PAGE):
                high = min(low + EXPORT_PAGE - 1, end)
                page = await self._store.read_entries(session.id, low, high, EXPORT_PAGE)
                entries.extend(self.open(stored) for stored in reversed(page))
        return entries
