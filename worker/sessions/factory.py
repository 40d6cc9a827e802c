"""Build a SessionManager from options: pick the store, codec, token counter and clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from schemas.base import describe_errors
from worker.engine.clock import Clock, system_clock
from worker.engine.keyed_lock import KeyedLock
from worker.engine.payload import PayloadCodec, PlainCodec
from worker.engine.tokens import TiktokenCounter, TokenCounter
from worker.errors import InvalidArgument
from worker.sessions.agent_file import load_agent_file
from worker.sessions.agents import AgentDirectory
from worker.sessions.manager import SessionManager
from worker.sessions.options import ManagerOptions
from worker.sessions.transcript import Transcript
from worker.stores.base import SessionStore
from worker.stores.cached import CachedStore
from worker.stores.kinds import open_store


def build_store(options: ManagerOptions) -> SessionStore:
    """The store of the kind `options.storage` names (worker/stores/kinds.py), not yet opened."""
    return open_store(options.storage, options)


def build_codec(options: ManagerOptions) -> PayloadCodec:
    """Keys configured: seal new records if encrypt_transcripts, open sealed ones either way."""
    from worker.engine.crypto import EncryptingCodec, KeyRing
    from worker.sessions.key_file import read_key_ring

    if options.encryption_key_file:
        ring = read_key_ring(Path(options.encryption_key_file), allow_shared=options.allow_shared_key_file)
    elif options.encryption_keys or options.encryption_key:
        ring = KeyRing.parse(options.encryption_keys or options.encryption_key or "")
    else:
        return PlainCodec()
    return EncryptingCodec(
        ring,
        seal_new=options.encrypt_transcripts,
        allow_plaintext=options.allow_plaintext_records,
        cache=options.caches.ciphers,
    )


def create_session_manager(
    *,
    store: SessionStore | None = None,
    clock: Clock | None = None,
    token_counter: TokenCounter | None = None,
    codec: PayloadCodec | None = None,
    **options: Any,
) -> SessionManager:
    """Builds a SessionManager from options. The manager opens its store on first use; `async with`
    (or `await manager.open()` / `close()`) also opens it and closes it when done.

    `store`, `clock`, `token_counter` and `codec` are injectable; every other keyword is a
    ManagerOptions field (scope, daily_reset_hour, idle_reset_minutes, storage, db_path, ...).
    """
    try:
        settings = ManagerOptions(**options)
    except ValidationError as exc:
        problems = describe_errors(exc, where="options")
        raise InvalidArgument(f"invalid session manager options: {problems}") from exc
    # The write-through session cache takes reads off the hot path (see worker/stores/cached.py).
    cache = CachedStore(store if store is not None else build_store(settings), capacity=settings.caches.sessions)
    chosen_store: SessionStore = cache
    chosen_clock = clock or system_clock
    locks = KeyedLock()
    transcript = Transcript(
        chosen_store,
        codec if codec is not None else build_codec(settings),
        token_counter if token_counter is not None else TiktokenCounter.load(settings.token_encoding),
        chosen_clock,
        locks,
        max_content_bytes=settings.max_content_bytes,
        lookup=cache.cached_session,
    )
    agent_file = None if settings.config is None else load_agent_file(settings.config)
    agents = AgentDirectory(chosen_store, settings.agent_defaults(), file=agent_file)
    return SessionManager(chosen_store, transcript, agents, chosen_clock, locks)
