"""The folders are the architecture: no role package imports a higher one, and drivers stay in their adapters."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

WORKER = Path(__file__).resolve().parents[2] / "worker"
# Lowest first. errors (what every package may raise) and config (the settings object each is handed) are leaves.
LAYERS = ("errors", "config", "engine", "stores", "sessions", "commands", "service", "amqp", "app")
# Third-party packages only one role package may import.
DRIVERS = {"pymongo": "stores", "bson": "stores", "sqlite3": "stores", "aio_pika": "amqp", "aiormq": "amqp"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def _package(path: Path) -> str:
    return path.relative_to(WORKER).parts[0].removesuffix(".py")


MODULES = sorted(p for p in WORKER.rglob("*.py") if _package(p) in LAYERS)


def test_every_module_is_in_a_role_package() -> None:
    loose = [
        p.name for p in WORKER.glob("*.py") if p.name not in {"__init__.py", "__main__.py", "errors.py", "config.py"}
    ]
    assert loose == []


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(WORKER)))
def test_no_package_imports_a_higher_one(path: Path) -> None:
    mine = LAYERS.index(_package(path))
    higher = [name for name in _imports(path) if name.startswith("worker.") and LAYERS.index(name.split(".")[1]) > mine]
    assert higher == [], f"{path.relative_to(WORKER)} reaches up to {higher}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(WORKER)))
def test_drivers_are_imported_only_by_their_adapters(path: Path) -> None:
    foreign = [name for name in _imports(path) if DRIVERS.get(name.split(".")[0], _package(path)) != _package(path)]
    assert foreign == [], f"{path.relative_to(WORKER)} imports {foreign}"


def test_the_engine_does_no_io() -> None:
    io_modules = {"asyncio.subprocess", "socket", "sqlite3", "pymongo", "aio_pika", "aiormq", "httpx", "urllib.request"}
    for path in (WORKER / "engine").rglob("*.py"):
        assert not _imports(path) & io_modules, path.name
        assert not re.search(r"(?<![\w.])(?<!def )open\(", path.read_text()), f"{path.name} opens files"
