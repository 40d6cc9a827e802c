"""A broker as Debian installs it, without the sharding plugin the inbound exchange needs: every
command that declares the topology says so in one line, names the fix, and exits with status 2."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.rabbit_nodes import RabbitNode, private_nodes

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def plain_node() -> Iterator[RabbitNode]:
    with private_nodes(1, plugins="") as nodes:
        yield nodes[0]


@pytest.mark.parametrize(
    "command",
    [["topology"], ["worker"], ["bench", "--quick", "--processes", "1"]],
    ids=["topology", "worker", "bench"],
)
def test_a_broker_without_the_sharding_plugin_is_one_line_and_status_2(
    plain_node: RabbitNode, tmp_path: Path, command: list[str]
) -> None:
    environment = {
        **os.environ,
        "AMQP_URL": plain_node.url,
        "SESSIONS_DB_PATH": str(tmp_path / "sessions.db"),
        "SESSIONS_METRICS_PORT": "0",
    }
    done = subprocess.run(
        [sys.executable, "-m", "worker", *command], env=environment, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    # (the worker's JSON log lines may carry the client library's own error, traceback and all)
    assert not any(line.startswith("Traceback") for line in done.stderr.splitlines()), done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, done.stderr[-2000:]
    assert "rabbitmq-plugins enable rabbitmq_sharding" in lines[0], lines
