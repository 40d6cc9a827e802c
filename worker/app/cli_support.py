"""Shared pieces of the CLI: the Typer app, console output, settings and clear failures."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from schemas.base import describe_errors
from worker.config import Settings, unread_variables
from worker.sessions.options import options_from_settings

app = typer.Typer(
    help="Chat sessions: the worker, its scheduler and the tools to operate them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
# Wide when piped, so ids in tables are never cut; a terminal keeps its own width.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
errors = Console(stderr=True, highlight=False)


def fail(message: str, code: int = 1) -> NoReturn:
    errors.print(f"[red]error:[/] {message}", soft_wrap=True)  # one line, however long
    raise typer.Exit(code)


def load_settings(*, json_logs: bool = False) -> Settings:
    from worker.app.logs import configure

    try:
        settings = Settings()
    except ValidationError as exc:
        problems = describe_errors(exc, prefix="SESSIONS_")
        fail(f"invalid settings: {problems}", code=2)
    configure(settings.log_level if json_logs else "WARNING", json_logs=json_logs)
    for problem in unread_variables(os.environ):
        logging.getLogger("worker.config").warning("ignored environment variable: %s", problem)
    return settings


def require_database(settings: Settings) -> None:
    """A read-only command opens an existing database only: a mistyped path is an error, never
    a new empty database (and new directories)."""
    if settings.storage == "sqlite" and not Path(settings.db_path).exists():
        fail(f"no database at {settings.db_path}: check SESSIONS_DB_PATH (read-only commands create none)", code=2)


@asynccontextmanager
async def opened_manager(settings: Settings) -> AsyncIterator[Any]:
    """The session manager, opened; a store or key that cannot be used at start-up is one line
    naming it and what to do, and exit status 2 (worker/app/startup.py)."""
    from worker import create_session_manager
    from worker.app.startup import startup_failure

    manager = None
    try:
        manager = create_session_manager(**options_from_settings(settings))
        await manager.open()
    except Exception as exc:
        line = startup_failure(settings, exc)
        if line is None:
            raise
        if manager is not None:
            with contextlib.suppress(Exception):
                await manager.close()
        fail(escape(line), code=2)
    try:
        yield manager
    finally:
        await manager.close()


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n")


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    view = Table(title=title, title_justify="left")
    for column in columns:
        view.add_column(column, overflow="fold")
    for row in rows:
        view.add_row(*("" if cell is None else str(cell) for cell in row))
    console.print(view)
