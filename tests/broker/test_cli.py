"""The `sessions` CLI end to end: a real worker process, the local broker, and each store."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from schemas.topology import Topology
from tests.support.backends import BACKENDS, WorkerStore
from tests.support.broker import AMQP_URL, require_broker
from tests.support.processes import wait_ready

pytestmark = [pytest.mark.broker, pytest.mark.parametrize("worker_store", BACKENDS, indirect=True)]
KEY = "k1:" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cli:
    def __init__(self, store: WorkerStore) -> None:
        self.names = Topology(f"cli{uuid.uuid4().hex[:8]}", 2)
        self.port = _free_port()
        self.env = {
            **os.environ,
            "AMQP_URL": AMQP_URL,
            "SESSIONS_TOPOLOGY_PREFIX": self.names.prefix,
            "SESSIONS_SHARDS": "2",
            **store.env(),
            "SESSIONS_METRICS_PORT": str(self.port),
            "SESSIONS_HEARTBEAT_SECONDS": "0.2",
            "SESSIONS_ENCRYPT_TRANSCRIPTS": "true",
            "SESSIONS_ENCRYPTION_KEYS": KEY,
            "SESSIONS_ADMINS": "telegram:boss",
        }
        self.worker: subprocess.Popen[bytes] | None = None

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "worker", *args], env=self.env, capture_output=True, text=True, timeout=120
        )
        if ok:
            assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json").stdout)

    def start_worker(self) -> None:
        self.worker = subprocess.Popen([sys.executable, "-m", "worker", "worker"], env=self.env)
        wait_ready(self.port, 30, "worker")

    def scrape(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as answer:
            return str(answer.read().decode())

    def close(self) -> None:
        if self.worker is not None:
            self.worker.terminate()
            assert self.worker.wait(30) == 0  # SIGTERM: drained and exited cleanly
        asyncio.run(_delete(self.names))


async def _delete(names: Topology) -> None:
    import aio_pika

    from worker.amqp.topology import delete_topology

    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        await delete_topology(connection, names)


@pytest.fixture
def cli(worker_store: WorkerStore) -> Iterator[Cli]:
    require_broker()
    tool = Cli(worker_store)
    try:
        yield tool
    finally:
        tool.close()


def test_every_command_in_human_and_json_output(cli: Cli, tmp_path: Path) -> None:
    assert "declared 7 exchanges and 5 queues" in cli.run("topology").stdout
    cli.start_worker()
    assert "published event" in cli.run("send", "--channel", "telegram", "--peer", "42", "hello there").stdout
    sent = json.loads(
        cli.run("send", "--channel", "telegram", "--peer", "42", "--thread", "t9", "/session", "--json").stdout
    )
    [reply] = [
        json.loads(line)
        for line in cli.run("replies", "--from-start", "--count", "1", "--timeout", "20", "--json").stdout.splitlines()
    ]
    assert reply["inReplyTo"] == sent["eventId"] and reply["delivery"]["threadId"] == "t9"
    cli.run("send", "--channel", "telegram", "--peer", "42", '/checkpoint save "cli cp"')
    human = cli.run("replies", "--from-start", "--count", "1", "--timeout", "20").stdout
    assert "command-result → telegram/42" in human and "cli cp" in human
    cli.run("send", "--channel", "telegram", "--peer", "42", "/help")
    assert "Session commands" in cli.run("replies", "--from-start", "--count", "1", "--timeout", "20").stdout
    later = cli.run("replies", "--count", "1", "--timeout", "3", ok=False)  # only what is published from now
    assert later.returncode == 3 and "only 0 of 1 replies" in later.stderr

    page = cli.json("list")
    assert isinstance(page, dict)
    [session] = page["items"]
    sid = session["id"]
    assert session["messageCount"] == 1 and sid in cli.run("list", "--verbose", "--all-agents").stdout
    assert cli.json("show", sid)["id"] == sid
    assert sid in cli.run("show", sid).stdout
    assert "hello there" in cli.run("history", sid).stdout
    assert cli.json("history", sid)[0]["content"] == "hello there"
    out = tmp_path / "export.jsonl"
    cli.run("export", sid, "--format", "jsonl", "--out", str(out))
    assert json.loads(out.read_text().splitlines()[0])["content"] == "hello there"
    assert "# Session" in cli.run("export", sid, "--metadata").stdout

    saved = cli.json("checkpoints", "save", sid, "manual")
    assert isinstance(saved, dict)
    assert {c["name"] for c in cli.json("checkpoints", "list", sid)} == {"cli cp", "manual"}
    assert "manual" in cli.run("checkpoints", "list", sid).stdout
    assert cli.json("checkpoints", "restore", saved["id"])["messageCount"] == 1
    assert "deleted" in cli.run("checkpoints", "delete", saved["id"]).stdout
    missing = cli.run("checkpoints", "delete", saved["id"], ok=False)
    assert missing.returncode == 4 and "no checkpoint" in missing.stderr  # 4: not found, as everywhere

    assert cli.json("cleanup", "--older-than", "1d", "--dry-run")["dryRun"] is True
    assert "would delete 0 sessions" in cli.run("cleanup", "--dry-run").stdout
    assert cli.json("rotate-key")["entries"] == 0  # all already under k1
    assert "re-sealed 0 entries" in cli.run("rotate-key").stdout
    assert cli.run("dead-letters", "--json").stdout == ""  # nothing dead-lettered
    assert "dead letters" in cli.run("dead-letters").stdout
    schema_dir = tmp_path / "schemas"
    cli.run("schemas", "--out", str(schema_dir))
    assert (schema_dir / "inbound-event.schema.json").exists()
    assert "SESSIONS_SHARDS" in cli.run("schemas", "--settings").stdout

    unknown = cli.run("show", "s_nope", ok=False)
    assert unknown.returncode == 4 and "no session s_nope" in unknown.stderr
    metrics = cli.scrape()
    assert 'sessions_events_total{outcome="applied",type="message.inbound"} 4.0' in metrics
    assert "sessions_owned_shards 2.0" in metrics


def test_send_takes_platform_ids_and_the_gateways_own_event_and_message_ids(cli: Cli) -> None:
    cli.run("topology")
    cli.start_worker()
    published = cli.run(
        "send",
        "--channel",
        "telegram",
        "--peer=-1001234567890",
        "--user=-42",
        "--group",
        "--event-id",
        "tg-4711",
        "--message-id",
        "4711",
        "/session",
        "--json",
    )
    sent = json.loads(published.stdout)
    assert sent["eventId"] == "tg-4711"
    assert (sent["source"]["peerId"], sent["source"]["userId"]) == ("-1001234567890", "-42")
    assert sent["source"]["messageId"] == "4711"
    [reply] = [
        json.loads(line)
        for line in cli.run("replies", "--from-start", "--count", "1", "--timeout", "20", "--json").stdout.splitlines()
    ]
    assert reply["inReplyTo"] == "tg-4711" and reply["kind"] == "command-result"
    assert reply["delivery"] == {"channel": "telegram", "to": "-1001234567890", "replyToId": "4711"}


def _one_line_failure(done: subprocess.CompletedProcess[str], *words: str) -> None:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, f"exit {done.returncode}: {done.stderr}"
    assert len(lines) == 1, f"not one line: {done.stderr!r}"
    assert "Traceback" not in done.stderr and all(word in lines[0].lower() for word in words), lines[0]


CLIENT_COMMANDS = {
    "send": ("send", "--peer=-1001234567890", "hello"),
    "replies": ("replies", "--count", "1", "--timeout", "2"),
}


@pytest.mark.parametrize("args", CLIENT_COMMANDS.values(), ids=CLIENT_COMMANDS.keys())
def test_an_unreachable_broker_is_one_line_and_exit_2(worker_store: WorkerStore, args: tuple[str, ...]) -> None:
    tool = Cli(worker_store)
    tool.env["AMQP_URL"] = f"amqp://guest:guest@127.0.0.1:{_free_port()}/"
    tool.env.pop("COLUMNS", None)  # as piped: no terminal width to hide a wrapped line behind
    _one_line_failure(tool.run(*args, ok=False), "rabbitmq")


@pytest.mark.parametrize("args", CLIENT_COMMANDS.values(), ids=CLIENT_COMMANDS.keys())
def test_a_missing_topology_is_one_line_and_exit_2(worker_store: WorkerStore, args: tuple[str, ...]) -> None:
    require_broker()
    tool = Cli(worker_store)  # a fresh prefix nobody declared
    tool.env.pop("COLUMNS", None)
    try:
        _one_line_failure(tool.run(*args, ok=False), "topology")
    finally:
        asyncio.run(_delete(tool.names))  # in case the command declared anything after all
