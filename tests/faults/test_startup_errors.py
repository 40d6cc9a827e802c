"""Start-up failures an operator can fix: one line naming the store or key file (password masked)
and what to do, exit status 2, no traceback."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import aio_pika
import pytest

from tests.support.broker import isolated_topology, require_broker
from tests.support.processes import free_port
from worker.amqp.topology import declare_topology
from worker.errors import EncryptionError
from worker.sessions.key_file import read_key_ring

ROOT = Path(__file__).resolve().parents[2]


def _worker(**env: str) -> subprocess.CompletedProcess[str]:
    """`sessions worker` with `env`; the store is opened before the broker is dialled."""
    return subprocess.run(
        [sys.executable, "-m", "worker", "worker"],
        env={**os.environ, "SESSIONS_METRICS_PORT": str(free_port()), **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _one_line_failure(done: subprocess.CompletedProcess[str], *expected: str) -> str:
    # The worker's own JSON log lines may come first (the broker is dialled after it logs).
    lines = [line for line in done.stderr.splitlines() if line.strip() and not line.startswith("{")]
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def _database(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE filler (x BLOB)")
        conn.executemany("INSERT INTO filler VALUES (?)", [(os.urandom(2000),) for _ in range(100)])
    return path


def _corrupt(tmp: Path) -> Path:
    path = tmp / "corrupt.db"
    path.write_bytes(os.urandom(8192))
    return path


def _truncated(tmp: Path) -> Path:
    path = _database(tmp / "truncated.db")
    with path.open("r+b") as raw:
        raw.truncate(path.stat().st_size // 2)
    return path


def _under_a_file(tmp: Path) -> Path:
    (tmp / "not-a-dir").write_text("a file")
    return tmp / "not-a-dir" / "sessions.db"


def _a_directory(tmp: Path) -> Path:
    (tmp / "a-dir.db").mkdir()
    return tmp / "a-dir.db"


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (_corrupt, "not a SQLite database"),
        (_truncated, "truncated"),
        (_under_a_file, "is a file, not a directory"),
        (_a_directory, "it is a directory"),
    ],
)
def test_a_database_that_cannot_be_opened_is_one_clear_line(
    tmp_path: Path, make: Callable[[Path], Path], says: str
) -> None:
    path = make(tmp_path)
    _one_line_failure(_worker(SESSIONS_DB_PATH=str(path)), str(path), says, "SESSIONS_DB_PATH")


def test_an_unreachable_mongodb_is_one_line_with_the_password_masked(tmp_path: Path) -> None:
    url = f"mongodb://app:s3cret-pw@127.0.0.1:{free_port()}/?serverSelectionTimeoutMS=300"
    done = _worker(SESSIONS_STORAGE="mongodb", MONGODB_URL=url)
    line = _one_line_failure(done, "cannot use MongoDB at mongodb://app:***@127.0.0.1", "check MONGODB_URL")
    assert "s3cret-pw" not in done.stderr + done.stdout and "s3cret-pw" not in line


def test_a_key_file_open_to_others_is_refused_unless_allowed(tmp_path: Path) -> None:
    key = tmp_path / "master.key"
    key.write_text("primary:" + "a" * 64 + "\n")
    key.chmod(0o644)
    keyed = {"SESSIONS_ENCRYPTION_KEY_FILE": str(key), "SESSIONS_DB_PATH": str(tmp_path / "s.db")}
    _one_line_failure(_worker(**keyed), str(key), "mode 644", "chmod 600", "SESSIONS_ALLOW_SHARED_KEY_FILE")
    assert read_key_ring(key, allow_shared=True).primary == "primary"  # allowed explicitly
    key.chmod(0o600)
    assert read_key_ring(key).primary == "primary"  # or made private
    key.chmod(0o640)
    with pytest.raises(EncryptionError, match="open to its group or others"):
        read_key_ring(key)


@pytest.mark.broker
async def test_shard_queues_declared_with_another_delivery_limit_are_one_clear_line(tmp_path: Path) -> None:
    url = require_broker()
    async with isolated_topology(url, shards=2) as names:
        connection = await aio_pika.connect(url)
        async with connection:
            channel = await connection.channel()
            await declare_topology(channel, names, delivery_limit=20)  # an older default
            await channel.close()
        env = {
            "AMQP_URL": url,
            "SESSIONS_TOPOLOGY_PREFIX": names.prefix,
            "SESSIONS_SHARDS": "2",
            "SESSIONS_DB_PATH": str(tmp_path / "s.db"),
        }
        done = await asyncio.to_thread(_worker, **env)
    _one_line_failure(done, names.shard_queue(0), "x-delivery-limit", "SESSIONS_DELIVERY_LIMIT")
