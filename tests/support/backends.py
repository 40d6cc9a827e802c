"""Store backends for the tests: SQLite, and MongoDB through the real driver on a real server.

The MongoDB server is, in this order: MONGODB_URL; the wire server `make test` installs
(tests/support/wire_server.py); a throwaway MongoDB container when a Docker engine is reachable.
Without any, MongoDB tests skip, or fail under CI=true. Each test gets a database of its own,
dropped at teardown.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient, MongoClient

from tests.support.wire_server import running_wire_server, wire_server_binary
from worker.config import Storage
from worker.stores.base import SessionStore
from worker.stores.kinds import KINDS, open_store


def docker_engine_available() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        probe = subprocess.run(["docker", "info"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"real MongoDB: {reason}; the MongoDB tests must run in CI (`make test` installs the server)")
    pytest.skip(f"real MongoDB: {reason}")


@contextmanager
def real_mongodb_url() -> Iterator[str]:
    """MONGODB_URL if set, else a fresh wire server, else a throwaway MongoDB container."""
    url = os.environ.get("MONGODB_URL")
    if url:
        yield url
        return
    binary = wire_server_binary()
    if binary is not None:
        with running_wire_server(binary) as started:
            yield started
        return
    if not docker_engine_available():
        _unavailable("MONGODB_URL is not set, the wire server is not installed (`make test` does) and no Docker engine")
    from testcontainers.mongodb import MongoDbContainer

    with MongoDbContainer("mongo:7") as container:
        yield container.get_connection_url()


def fresh_database_name() -> str:
    return f"sessions_test_{uuid.uuid4().hex[:12]}"


async def drop_database(url: str, name: str) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
    try:
        await client.drop_database(name)
    finally:
        await client.close()


@dataclass(frozen=True)
class WorkerStore:
    """Where workers (in-process or processes) and the test's own managers keep sessions; the
    StoreOptions the store kinds open from (worker/stores/kinds.py)."""

    storage: Storage
    db_path: str
    mongodb_url: str | None = None
    mongodb_database: str = "sessions"

    @classmethod
    def sqlite_in(cls, folder: Path) -> WorkerStore:
        """A SQLite file in `folder` (a test's tmp_path)."""
        return cls("sqlite", str(folder / "sessions.db"))

    def options(self) -> dict[str, Any]:
        """Settings / manager options naming this store."""
        values: dict[str, Any] = {"storage": self.storage, "db_path": self.db_path}
        if self.mongodb_url is not None:
            values |= {"mongodb_url": self.mongodb_url, "mongodb_database": self.mongodb_database}
        return values

    def env(self) -> dict[str, str]:
        """The same as environment variables, for worker and CLI processes."""
        values = {"SESSIONS_STORAGE": self.storage, "SESSIONS_DB_PATH": self.db_path}
        if self.mongodb_url is not None:
            values |= {"MONGODB_URL": self.mongodb_url, "SESSIONS_MONGODB_DATABASE": self.mongodb_database}
        return values


@contextmanager
def _sqlite_place(tmp_path: Path, server: str | None) -> Iterator[WorkerStore]:
    yield WorkerStore("sqlite", str(tmp_path / "sessions.db"))


@contextmanager
def _mongodb_place(tmp_path: Path, server: str | None) -> Iterator[WorkerStore]:
    """A database of its own on the run's server, dropped afterwards."""
    assert server is not None
    chosen = WorkerStore("mongodb", str(tmp_path / "sessions.db"), server, fresh_database_name())
    try:
        yield chosen
    finally:
        client: MongoClient[dict[str, Any]] = MongoClient(server)
        try:
            client.drop_database(chosen.mongodb_database)
        finally:
            client.close()


@dataclass(frozen=True)
class KindForTests:
    """How the tests provide one kind of store: a fresh place for one test, and the marks of its
    parameter. A kind that needs a server (KINDS[kind].needs) gets it from the session fixture
    named like that option (mongodb_url: the run's MongoDB server)."""

    place: Callable[[Path, str | None], AbstractContextManager[WorkerStore]]
    marks: tuple[pytest.MarkDecorator, ...] = ()


TEST_BACKENDS: dict[Storage, KindForTests] = {
    "sqlite": KindForTests(_sqlite_place),
    # Every MongoDB-backed parameter carries the realmongo marker (`-m "not realmongo"` leaves them out).
    "mongodb": KindForTests(_mongodb_place, marks=(pytest.mark.realmongo,)),
}
if set(TEST_BACKENDS) != set(KINDS):
    raise ImportError(f"every store kind needs a test backend: {sorted(set(KINDS) - set(TEST_BACKENDS))}")
# The contract suite's `store` runs on each kind; broker tests whose workers should run on each say
# `pytest.mark.parametrize("worker_store", BACKENDS, indirect=True)` (else they run on SQLite).
BACKENDS = tuple(pytest.param(kind, marks=TEST_BACKENDS[kind].marks) for kind in KINDS)


def server_of(request: pytest.FixtureRequest, backend: Storage) -> str | None:
    """The server the kind needs (the session fixture named like its needed option), if any."""
    needs = KINDS[backend].needs
    return str(request.getfixturevalue(needs[0][0])) if needs else None


@contextmanager
def opened_worker_store(backend: Storage, tmp_path: Path, server: str | None) -> Iterator[WorkerStore]:
    with TEST_BACKENDS[backend].place(tmp_path, server) as chosen:
        yield chosen


@asynccontextmanager
async def opened_store(backend: Storage, tmp_path: Path, server: str | None) -> AsyncIterator[SessionStore]:
    """A store of that kind, opened through the registry as the product opens it, closed after."""
    with opened_worker_store(backend, tmp_path, server) as place:
        store = open_store(backend, place)
        try:
            await store.ensure_schema()
            yield store
        finally:
            await store.close()
