from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.backends import (
    BACKENDS,
    WorkerStore,
    drop_database,
    fresh_database_name,
    opened_store,
    opened_worker_store,
    real_mongodb_url,
    server_of,
)
from worker import create_session_manager
from worker.config import Storage
from worker.engine.clock import ManualClock
from worker.engine.tokens import TiktokenCounter
from worker.sessions.manager import SessionManager
from worker.stores.base import SessionStore


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that asks for the MongoDB server by name carries the realmongo marker (the
    MongoDB parameters of `store` and `worker_store` carry it through BACKENDS)."""
    unmarked = [
        item.nodeid
        for item in items
        if "mongodb_url" in getattr(item, "fixturenames", ()) and item.get_closest_marker("realmongo") is None
    ]
    if unmarked:
        raise pytest.UsageError(f"needs the MongoDB server but is not marked realmongo: {', '.join(unmarked)}")


@pytest.fixture(scope="session")
def token_counter() -> TiktokenCounter:
    return TiktokenCounter.load()


@pytest.fixture(scope="session")
def mongodb_url() -> Iterator[str]:
    """One MongoDB server for the whole run (started on first use); each test has its own database."""
    with real_mongodb_url() as url:
        yield url


@pytest.fixture
async def mongodb_database(mongodb_url: str) -> AsyncIterator[str]:
    """A fresh database name on the run's MongoDB server, dropped at teardown."""
    name = fresh_database_name()
    try:
        yield name
    finally:
        await drop_database(mongodb_url, name)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 3, 10, 0, tzinfo=UTC))


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SessionStore]:
    async with opened_store(request.param, tmp_path, server_of(request, request.param)) as opened:
        yield opened


@pytest.fixture
def worker_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WorkerStore]:
    """SQLite unless a test parametrizes it (indirectly) with `BACKENDS`."""
    backend: Storage = getattr(request, "param", "sqlite")
    with opened_worker_store(backend, tmp_path, server_of(request, backend)) as chosen:
        yield chosen


MakeManager = Callable[..., SessionManager]


@pytest.fixture
def make_manager(store: SessionStore, clock: ManualClock, token_counter: TiktokenCounter) -> MakeManager:
    def make(**options: Any) -> SessionManager:
        return create_session_manager(store=store, clock=clock, token_counter=token_counter, **options)

    return make


@pytest.fixture
def manager(make_manager: MakeManager) -> SessionManager:
    return make_manager()
