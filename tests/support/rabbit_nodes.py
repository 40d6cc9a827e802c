"""Private RabbitMQ nodes for broker fault tests: nodes of our own, restarted, clustered and stopped
at will, while the machine's shared broker (used by other tests and benchmarks) is never touched.

Each node gets its own name, AMQP and distribution ports, and a directory holding its data, logs,
config and plugin list; nodes of one cluster share an Erlang cookie through a private HOME. The
node runs as a child in its own process group, so a hard kill takes the whole VM with it. Nodes
register with the machine's epmd (port 4369), which the shared broker already runs.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

# The Debian wrappers in /usr/sbin switch to the `rabbitmq` user and its environment; the scripts
# behind them honour RABBITMQ_* variables, which is what a private node needs.
SCRIPT_DIRS = (Path("/usr/lib/rabbitmq/bin"), Path("/usr/local/lib/rabbitmq/bin"))
# rabbitmqctl listens on one of these while it runs; a node must not take them.
CTL_PORTS = range(35672, 35683)
START_TIMEOUT = 60.0
CTL_TIMEOUT = 60.0


def rabbit_scripts() -> Path:
    """The directory with rabbitmq-server and rabbitmqctl; fails under CI, skips elsewhere."""
    for directory in SCRIPT_DIRS:
        if (directory / "rabbitmq-server").exists():
            return directory
    message = "rabbitmq-server is not installed, so private broker nodes cannot be started"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; broker fault tests must run in CI")
    pytest.skip(message)


def free_port() -> int:
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in CTL_PORTS:
            return port


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 1).close()
    except OSError:
        return False
    return True


class RabbitNode:
    """One private node. `start` may be called again after `stop` or `kill`: data survives."""

    def __init__(
        self, scripts: Path, root: Path, home: Path, name: str, config: str = "", plugins: str = "rabbitmq_sharding"
    ) -> None:
        self.scripts = scripts
        self.root = root
        self.home = home
        self.name = name
        self.amqp_port = free_port()
        self.dist_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        root.mkdir(parents=True)
        (root / "rabbitmq.conf").write_text(f"listeners.tcp.default = 127.0.0.1:{self.amqp_port}\n{config}")
        (root / "enabled_plugins").write_text(f"[{plugins}].\n")
        (root / "rabbitmq-env.conf").write_text("")  # instead of /etc/rabbitmq/rabbitmq-env.conf

    @property
    def url(self) -> str:
        return self.url_as("guest", "guest")

    def url_as(self, user: str, password: str) -> str:
        return f"amqp://{user}:{password}@127.0.0.1:{self.amqp_port}/"

    def env(self) -> dict[str, str]:
        root = self.root
        return {
            **os.environ,
            "HOME": str(self.home),  # the cluster's own .erlang.cookie
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONF_ENV_FILE": str(root / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(root / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(root / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(root / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(root / "log"),
            "RABBITMQ_PID_FILE": str(root / "node.pid"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Launch the node; `wait_started` waits for its AMQP listener."""
        assert not self.running, f"{self.name} is already running"
        with (self.root / "console.log").open("ab") as console:
            self.process = subprocess.Popen(
                [str(self.scripts / "rabbitmq-server")],
                env=self.env(),
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: kill() reaches the VM and its helpers
            )

    def wait_started(self, within: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"{self.name} exited while starting:\n{self.console_tail()}")
            if port_open(self.amqp_port):
                return
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} did not open port {self.amqp_port} within {within}s:\n{self.console_tail()}")

    def stop(self, within: float = 60.0) -> None:
        """Graceful shutdown (what a restart or an upgrade does): SIGTERM makes the start script
        stop the VM cleanly; anything still alive after `within` is killed."""
        if not self.running:
            return
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(within)
        except subprocess.TimeoutExpired:
            self.kill()
        self._kill_group()  # helpers (erl_child_setup, inet_gethost) go with the VM
        self._wait_gone()

    def kill(self) -> None:
        """A crash: SIGKILL to the node's whole process group, no goodbye to clients or peers."""
        self._kill_group()
        if self.process is not None:
            self.process.wait(30)
            self._wait_gone()

    def _wait_gone(self, within: float = 30.0) -> None:
        """The VM is a grandchild that dies a moment after the signal: wait until its ports are
        closed, so a restart does not find them (or the node name) still taken."""
        deadline = time.monotonic() + within
        while port_open(self.amqp_port) or port_open(self.dist_port):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} still listening {within}s after it was killed")
            time.sleep(0.05)

    def _kill_group(self) -> None:
        if self.process is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def restart(self, *, hard: bool = False) -> None:
        if hard:
            self.kill()
        else:
            self.stop()
        self.start()
        self.wait_started()

    def ctl(self, *args: str, timeout: float = CTL_TIMEOUT) -> str:
        """rabbitmqctl against this node; raises with its output when it fails."""
        done = subprocess.run(
            [str(self.scripts / "rabbitmqctl"), "-n", self.name, *args],
            env=self.env(),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode(errors="replace")
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} on {self.name} failed: {output}")
        return done.stdout.decode(errors="replace")

    def routes(self, exchange: str, keys: list[str]) -> list[str]:
        """The queue the exchange routes each routing key to right now, asked of the broker's router
        (RabbitMQ 3.x internals): what publishers would get, without publishing."""
        binaries = ", ".join(f'<<"{key}">>' for key in keys)
        route_each = (
            f'X = rabbit_exchange:lookup_or_die(rabbit_misc:r(<<"/">>, exchange, <<"{exchange}">>)), '
            "[begin M = rabbit_basic:message(element(2, X), K, [], <<>>), "
            "[element(4, Q) || Q <- rabbit_exchange:route("
            "X, rabbit_basic:delivery(false, false, M, undefined))] end "
            f"|| K <- [{binaries}]]."
        )
        routed = re.findall(r'\[<<"([^"]*)">>\]', self.ctl("eval", route_each))
        assert len(routed) == len(keys), f"unexpected routes: {routed}"
        return routed

    def join(self, seed: RabbitNode) -> None:
        """Join `seed`'s cluster (the documented stop_app / join_cluster / start_app dance)."""
        self.ctl("stop_app")
        self.ctl("join_cluster", seed.name)
        self.ctl("start_app")
        self.wait_started()

    def console_tail(self, lines: int = 30) -> str:
        path = self.root / "console.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _write_cookie(home: Path) -> None:
    home.mkdir(parents=True)
    cookie = home / ".erlang.cookie"
    cookie.write_text(uuid.uuid4().hex.upper())
    cookie.chmod(0o400)


@contextmanager
def private_nodes(
    count: int, *, cluster: bool = False, config: str = "", plugins: str = "rabbitmq_sharding"
) -> Iterator[list[RabbitNode]]:
    """`count` started private nodes (joined into one cluster when asked), killed and deleted on
    exit whatever happened; `config` holds extra rabbitmq.conf lines, `plugins` the enabled ones
    (comma-separated; empty for a broker as Debian installs it). Data lives outside pytest's
    tmp_path, which keeps old runs around."""
    scripts = rabbit_scripts()
    base = Path(f"/tmp/sessions-rabbit-{uuid.uuid4().hex[:8]}")  # short: Erlang paths in sockets
    _write_cookie(base / "home")
    tag = base.name.rsplit("-", 1)[1]
    nodes = [
        RabbitNode(scripts, base / f"n{i}", base / "home", f"sesst{tag}n{i}@localhost", config, plugins)
        for i in range(count)
    ]
    try:
        for node in nodes:
            node.start()
        for node in nodes:
            node.wait_started()
        if cluster:
            for node in nodes[1:]:
                node.join(nodes[0])
        yield nodes
    finally:
        for node in nodes:
            node.kill()
        shutil.rmtree(base, ignore_errors=True)
