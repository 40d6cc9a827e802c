"""A MongoDB wire-protocol server for the test run: a fresh `secantusd-py` on a free loopback port.

`make test` installs the `secantusdb` package into a tool venv of its own (.tools/secantus; it is
GPL-2.0 and test-time only, never a dependency of the product). The server keeps its data in a
temporary directory (`--storage-path :memory:`), presents itself as the primary of a one-node
replica set, and with `--enable-test-commands` accepts `configureFailPoint` (the fail-point tests).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from tests.support.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
# The tool venv the Makefile builds; SECANTUSD names another binary.
DEFAULT_BINARY = ROOT / ".tools" / "secantus" / "bin" / "secantusd-py"
START_WITHIN_SECONDS = 30.0


def wire_server_binary() -> Path | None:
    binary = Path(os.environ.get("SECANTUSD", DEFAULT_BINARY))
    return binary if binary.is_file() else None


def _answers(url: str) -> bool:
    client: MongoClient[dict[str, object]] = MongoClient(url, serverSelectionTimeoutMS=500, connectTimeoutMS=500)
    try:
        return bool(client.admin.command("hello").get("isWritablePrimary"))
    except PyMongoError:
        return False
    finally:
        client.close()


@contextmanager
def running_wire_server(binary: Path) -> Iterator[str]:
    """Start the server, wait until it is a writable primary, yield its URL, stop it afterwards.
    Raises RuntimeError (with the server's log) if it does not come up."""
    with tempfile.TemporaryDirectory(prefix="wire-server-") as home:
        config = Path(home) / "secantusd.toml"
        config.write_text("")  # an explicit, empty config: no secantusd.toml is picked up from elsewhere
        log_path = Path(home) / "server.log"
        port = free_port()
        command = [str(binary), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
        command += ["--storage-path", ":memory:", "--enable-test-commands", "--log-level", "WARNING"]
        with log_path.open("wb") as log:
            server = subprocess.Popen(command, cwd=home, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"mongodb://127.0.0.1:{port}/"
            _wait_until_primary(server, url, log_path)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(5)


def _wait_until_primary(server: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_WITHIN_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            break
        if _answers(url):
            return
        time.sleep(0.1)
    tail = log_path.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"the MongoDB wire server did not start (exit code {server.poll()}): {tail}")
