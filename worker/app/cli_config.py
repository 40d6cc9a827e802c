"""`sessions config check FILE` and `sessions config show`: the agent configuration file."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer

from worker.app.cli_support import (
    app,
    console,
    fail,
    load_settings,
    opened_manager,
    print_json,
    require_database,
    table,
)
from worker.commands.handlers import plural
from worker.errors import SessionsError
from worker.sessions.agent_file import load_agent_file

config_app = typer.Typer(help="Check the agent configuration file and show effective settings.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("check")
def check(path: Annotated[Path, typer.Argument(help="the YAML file")]) -> None:
    """Validate an agent configuration file (every agent's merged settings)."""
    try:
        loaded = load_agent_file(path)
    except SessionsError as exc:
        fail(str(exc), code=2)
    names = ", ".join(sorted(loaded.agents)) or "none"
    console.print(f"{path}: ok ({plural(len(loaded.agents), 'agent')}: {names})")


@config_app.command("show")
def show(
    agent: Annotated[str | None, typer.Option(help="the agent (default: SESSIONS_AGENT)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable JSON output")] = False,
) -> None:
    """The agent's effective settings, and where each one comes from."""
    settings = load_settings()
    require_database(settings)
    agent_id = agent or settings.agent

    async def explain() -> list[tuple[str, Any, str]]:
        async with opened_manager(settings) as manager:
            rows: list[tuple[str, Any, str]] = await manager.agents.explain(agent_id)
            return rows

    try:
        rows = asyncio.run(explain())
    except SessionsError as exc:
        fail(str(exc), code=2)
    if as_json:
        print_json([{"setting": name, "value": value, "source": source} for name, value, source in rows])
        return
    table(f"Settings of agent {agent_id}", ["setting", "value", "from"], rows)
