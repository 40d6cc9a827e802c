"""The Node.js gateway in examples/node-gateway, written from the published contracts alone, installed
with npm and run against a worker: its own tests (routing-key vectors, ajv strict on every schema)
and a whole conversation over several platforms, with duplicates and reused ids, and no forward."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.broker import BrokerHarness

pytestmark = pytest.mark.broker
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples/node-gateway"
NPM_TIMEOUT = 240  # under pytest-timeout's 300 s, which counts the fixture too


def _unavailable(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; the Node gateway test must run in CI")
    pytest.skip(message)


@pytest.fixture(scope="module")
def node_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of the example with its locked packages installed (`npm ci`, npm's cache is reused)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _unavailable("node and npm are not installed")
    copy = tmp_path_factory.mktemp("node-gateway") / "node-gateway"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("node_modules"))
    try:
        installed = subprocess.run(
            [str(npm), "ci", "--no-audit", "--no-fund"],
            cwd=copy,
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        _unavailable(f"npm ci took longer than {NPM_TIMEOUT}s")
    if installed.returncode != 0:
        _unavailable(f"npm ci failed: {installed.stderr[-2000:]}")
    yield copy


def _node_env(**extra: str) -> dict[str, str]:
    """The copy reads the repository's schemas and vectors, as the example does in place."""
    return {
        **os.environ,
        "SESSIONS_SCHEMAS_DIR": str(ROOT / "schemas/json"),
        "SESSIONS_VECTORS_DIR": str(ROOT / "schemas/vectors"),
        "SESSIONS_ROUTING_SPEC": str(ROOT / "docs/reference/routing-keys.md"),
        **extra,
    }


def test_the_node_tests_pass(node_gateway: Path) -> None:
    """Routing-key vectors (the example's code and the spec's snippet), every schema compiled by ajv in
    strict mode, the events corpus."""
    result = subprocess.run(
        ["node", "--test", "test/"], cwd=node_gateway, env=_node_env(), capture_output=True, text=True, timeout=120
    )
    failed = [line for line in result.stdout.splitlines() if line.startswith("not ok")]
    assert result.returncode == 0, "\n".join(failed) or result.stdout[-3000:] + result.stderr[-3000:]
    assert "# fail 0" in result.stdout


async def _conversation(node_gateway: Path, harness: BrokerHarness) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        "node",
        "scripts/conversation.js",
        cwd=node_gateway,
        env=_node_env(AMQP_URL=harness.url, SESSIONS_PREFIX=harness.names.prefix),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    lines = stdout.decode().strip().splitlines()
    assert lines, f"no report from the conversation: {stderr.decode()[-3000:]}"
    report: dict[str, Any] = json.loads(lines[-1])
    return report


async def test_a_conversation_through_the_node_gateway(node_gateway: Path, harness: BrokerHarness) -> None:
    worker = await harness.start_worker()
    report = await _conversation(node_gateway, harness)
    assert report["problems"] == [], report
    stats = report["stats"]
    # 10 chats x (an answered message, /session, /history, a /checkpoint list command event).
    assert stats["expectedReplies"] == stats["distinctReplies"] == 40
    assert stats["turns"] == 10
    # Each duplicate re-published its reply (or turn) under the same id; none became a second answer.
    assert stats["replyCopies"] >= stats["distinctReplies"] + stats["chats"]
    counts = worker.metrics.snapshot()
    assert counts.forwarded == 0, "a gateway keyed by the specification never causes a forward"
    assert counts.dead_lettered == 0 and harness.dead.items == []
    # The /history duplicates replay their recorded reply; a message's duplicate re-applies idempotently
    # (its turn carries the same id: the agent answered 10 turns for 20 messages).
    assert counts.replayed >= stats["chats"]
