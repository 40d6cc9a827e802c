"""Store backends for the contract suite: SQLite, MongoDB over the mongomock shim, real MongoDB."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest

from tests.support.mongomock_async import AsyncMongomockClient
from worker.stores.base import SessionStore
from worker.stores.mongo import MongoStore
from worker.stores.sqlite import SqliteStore

BACKENDS = ("sqlite", "mongomock", "mongodb")


def docker_engine_available() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        probe = subprocess.run(["docker", "info"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


@contextmanager
def real_mongodb_url() -> Iterator[str]:
    """MONGODB_URL if set, else a throwaway MongoDB container, else skip with the reason."""
    url = os.environ.get("MONGODB_URL")
    if url:
        yield url
        return
    if not docker_engine_available():
        pytest.skip("real MongoDB: MONGODB_URL is not set and no Docker engine is reachable for testcontainers")
    from testcontainers.mongodb import MongoDbContainer

    with MongoDbContainer("mongo:7") as container:
        yield container.get_connection_url()


@asynccontextmanager
async def open_store(backend: str, tmp_path: Path, mongodb_url: str | None) -> AsyncIterator[SessionStore]:
    store: SessionStore
    if backend == "sqlite":
        store = SqliteStore.at_path(str(tmp_path / "sessions.db"))
    elif backend == "mongomock":
        store = MongoStore(AsyncMongomockClient(), "sessions")
    else:
        assert mongodb_url is not None
        store = MongoStore.from_url(mongodb_url, f"sessions_test_{uuid.uuid4().hex[:12]}")
    await store.ensure_schema()
    try:
        yield store
    finally:
        await store.close()
