"""The per-chat caches are bounded by settings: the session cache keeps at most its size, least
recently used first out, and the sizes come from the worker's settings through the manager's options."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas import CacheSizes
from schemas.settings import SESSION_CACHE_SIZE
from worker import create_session_manager
from worker.config import Settings
from worker.errors import InvalidArgument
from worker.sessions.manager import SessionManager
from worker.sessions.options import options_from_settings
from worker.stores.cached import CachedStore
from worker.stores.sqlite import SqliteStore

LATER = datetime(2030, 1, 1, tzinfo=UTC)


async def _sessions(manager: SessionManager, count: int) -> list[str]:
    return [(await manager.get_or_create_session(channel_id="telegram", peer_id=f"p{i}")).id for i in range(count)]


async def _cached_ids(manager: SessionManager, inner: SqliteStore, ids: list[str]) -> set[str]:
    """Which of `ids` the cache holds: a model set behind the cache's back shows through only
    for sessions it has to read again. Newest first: a read that misses puts the session in,
    pushing the oldest out."""
    cache = manager.store
    assert isinstance(cache, CachedStore)
    for session_id in ids:
        await inner.set_model(session_id, "behind-the-cache", LATER)
    held = set()
    for session_id in reversed(ids):
        found = await cache.cached_session(session_id)
        assert found is not None
        if found.model is None:
            held.add(session_id)
    return held


async def test_the_session_cache_keeps_its_size_and_drops_the_least_recently_used(tmp_path: Path) -> None:
    inner = SqliteStore.at_path(str(tmp_path / "s.db"))
    async with create_session_manager(store=inner, caches={"sessions": 3}) as manager:
        ids = await _sessions(manager, 10)
        assert await _cached_ids(manager, inner, ids) == set(ids[-3:])


async def test_the_sizes_come_from_the_worker_settings(tmp_path: Path) -> None:
    settings = Settings(session_cache_size=4, cipher_cache_size=2, db_path=str(tmp_path / "w.db"))
    options = options_from_settings(settings)
    assert options["caches"] == CacheSizes(sessions=4, ciphers=2)
    inner = SqliteStore.at_path(settings.db_path)
    options.pop("db_path")
    async with create_session_manager(store=inner, **options) as manager:
        ids = await _sessions(manager, 6)
        assert await _cached_ids(manager, inner, ids) == set(ids[-4:])


def test_the_environment_sets_them_and_the_defaults_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSIONS_SESSION_CACHE_SIZE", "1234")
    assert options_from_settings(Settings())["caches"].sessions == 1234
    monkeypatch.delenv("SESSIONS_SESSION_CACHE_SIZE")
    assert options_from_settings(Settings())["caches"].sessions == SESSION_CACHE_SIZE == CacheSizes().sessions
    assert 0 < SESSION_CACHE_SIZE <= 50_000


def test_a_cache_of_no_entries_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="caches"):
        create_session_manager(caches={"sessions": 0})
