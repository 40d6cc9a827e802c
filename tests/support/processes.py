"""Worker processes for fault tests: real `python -m worker worker` processes on an isolated topology."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import IO, TYPE_CHECKING

from schemas.topology import Topology

if TYPE_CHECKING:  # backends starts the wire server, which takes its port from here
    from tests.support.backends import WorkerStore


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(port: int, within: float, what: str) -> None:
    """Poll the /readyz of the process whose ops server listens on `port` until it says ready."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{what} did not become ready within {within:.0f}s")


class WorkerProcesses:
    """`url` may list several broker nodes, comma-separated: worker i then starts on node i (mod n)
    and fails over in list order. With `log_dir`, each worker's log goes to worker-<i>.log there."""

    def __init__(
        self,
        url: str,
        names: Topology,
        store: WorkerStore,
        *,
        log_dir: Path | None = None,
        command: str = "worker",
        **settings: str,
    ) -> None:
        self.url = url
        self.command = command  # `worker`, or `run` (a worker and the scheduler in one process)
        self.names = names
        self.store = store
        self.log_dir = log_dir
        self.settings = settings
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.ports: dict[int, int] = {}

    def env(self, index: int) -> dict[str, str]:
        return {
            **os.environ,
            "AMQP_URL": self.url_for(index),
            "SESSIONS_TOPOLOGY_PREFIX": self.names.prefix,
            "SESSIONS_SHARDS": str(self.names.shards),
            **self.store.env(),
            "SESSIONS_HEARTBEAT_SECONDS": "0.25",
            "SESSIONS_METRICS_PORT": str(self.ports[index]),
            "SESSIONS_WORKER_ID": f"w{index}-{uuid.uuid4().hex[:4]}",
            **self.settings,
        }

    def url_for(self, index: int) -> str:
        urls = self.url.split(",")
        first = index % len(urls)
        return ",".join(urls[first:] + urls[:first])

    def start(self, index: int, *, wait: bool = True) -> None:
        self.ports[index] = free_port()
        log: IO[bytes] | int = subprocess.DEVNULL
        if self.log_dir is not None:
            log = (self.log_dir / f"worker-{index}.log").open("ab")
        try:
            self.procs[index] = subprocess.Popen(
                [sys.executable, "-m", "worker", self.command], env=self.env(index), stdout=log, stderr=log
            )
        finally:
            if not isinstance(log, int):
                log.close()  # the child has its own copy
        if wait:
            self.wait_ready(index)

    def wait_ready(self, index: int, within: float = 30) -> None:
        wait_ready(self.ports[index], within, f"worker {index}")

    def metric(self, index: int, name: str) -> float | None:
        """A gauge or counter (without labels) from the worker's /metrics, None while unreadable."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ports[index]}/metrics", timeout=2) as answer:
                text = answer.read().decode()
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith(f"{name} "):
                return float(line.split()[1])
        return None

    def signal(self, index: int, sig: signal.Signals) -> None:
        self.procs[index].send_signal(sig)

    def wait(self, index: int, within: float) -> int:
        return self.procs[index].wait(within)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
