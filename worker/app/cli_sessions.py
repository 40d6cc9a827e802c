"""Inspection and maintenance commands: list, show, history, export, checkpoints, cleanup."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
from rich.progress import Progress

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
from worker.commands.handlers import model_name, plural
from worker.errors import NotFound, SessionsError

T = TypeVar("T")
JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable JSON output")]
checkpoints_app = typer.Typer(help="List, save, restore and delete checkpoints.", no_args_is_help=True)
app.add_typer(checkpoints_app, name="checkpoints")


def _with_manager(action: Callable[[Any], Awaitable[T]], *, read_only: bool = False) -> T:
    settings = load_settings()
    if read_only:
        require_database(settings)

    async def go() -> T:
        async with opened_manager(settings) as manager:
            return await action(manager)

    try:
        return asyncio.run(go())
    except NotFound as exc:
        fail(str(exc), code=4)
    except SessionsError as exc:
        fail(str(exc), code=1)


@app.command("list")
def list_sessions(
    agent: Annotated[str | None, typer.Option(help="only this agent (default: SESSIONS_AGENT)")] = None,
    all_agents: Annotated[bool, typer.Option("--all-agents", help="every agent")] = False,
    active: Annotated[int | None, typer.Option(help="only sessions active within MINUTES")] = None,
    status: Annotated[str | None, typer.Option(help="active or archived")] = None,
    limit: Annotated[int, typer.Option(help="page size")] = 50,
    cursor: Annotated[str | None, typer.Option(help="next-page cursor from the previous page")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="more columns")] = False,
    as_json: JsonOption = False,
) -> None:
    """List sessions, newest activity first, one page at a time."""
    if status not in (None, "active", "archived"):
        fail("--status must be active or archived", code=2)
    settings = load_settings()
    agent_id = None if all_agents else (agent or settings.agent)
    page = _with_manager(
        lambda m: m.list_sessions(
            agent_id=agent_id, status=status, active_within_minutes=active, limit=limit, cursor=cursor
        ),
        read_only=True,
    )
    if as_json:
        print_json({"items": [s.to_wire() for s in page.items], "nextCursor": page.next_cursor})
        return
    columns = ["id", "key", "status", "messages", "last activity"]
    if verbose:
        columns += ["agent", "created", "tokens in/out", "model", "route"]
    rows = []
    for s in page.items:
        row: list[Any] = [
            s.id,
            s.key,
            s.status if s.status == "active" else f"archived ({s.archived_reason})",
            s.message_count,
            f"{s.last_activity_at:%Y-%m-%d %H:%M:%S}",
        ]
        if verbose:
            route = s.delivery_context.to_wire() if s.delivery_context else {}
            row += [
                s.agent_id,
                f"{s.created_at:%Y-%m-%d %H:%M}",
                f"{s.input_tokens}/{s.output_tokens}",
                model_name(s) or "",
                "/".join(str(v) for v in route.values()),
            ]
        rows.append(row)
    table(f"Sessions ({'all agents' if agent_id is None else agent_id})", columns, rows)
    if page.next_cursor:
        console.print(f"next page: --cursor {page.next_cursor}")


@app.command()
def show(session_id: str, as_json: JsonOption = False) -> None:
    """Show one session's document."""
    session = _with_manager(lambda m: m.get_session(session_id), read_only=True)
    if as_json:
        print_json(session.to_wire())
        return
    table(f"Session {session.id}", ["field", "value"], [(k, v) for k, v in session.to_wire().items()])


@app.command()
def model(
    session_id: str,
    name: Annotated[str | None, typer.Argument(help="the model to use; omit to show it")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="back to the agent's default model")] = False,
) -> None:
    """Show or set a session's model override (every turn event of the session carries it)."""
    if name is not None and clear:
        fail("give a model name or --clear, not both", code=2)
    if name is None and not clear:
        session = _with_manager(lambda m: m.get_session(session_id), read_only=True)
    else:
        session = _with_manager(lambda m: m.set_model(session_id, name))
    console.print(f"session {session.id}: model {model_name(session) or 'the agent default'}")


@app.command()
def resume(session_id: str, as_json: JsonOption = False) -> None:
    """Undo a reset: make an archived session active again in its chat (what arrived since is appended)."""
    resumed = _with_manager(lambda m: m.resume_session(session_id))
    if as_json:
        print_json(resumed.session.to_wire())
        return
    replaced = f"; {resumed.replaced.id} archived" if resumed.replaced else ""
    carried = plural(resumed.carried, "message")
    console.print(f"resumed {resumed.session.id} ({carried} since the reset added at its end{replaced})")


@app.command()
def history(
    session_id: str,
    limit: Annotated[int, typer.Option(help="newest N entries")] = 50,
    fmt: Annotated[str, typer.Option("--format", help="text, markdown or messages")] = "text",
    as_json: JsonOption = False,
) -> None:
    """Print a session's recent history."""
    if as_json or fmt == "messages":
        entries = _with_manager(lambda m: m.get_history(session_id, limit=limit, format="messages"), read_only=True)
        print_json([e.to_wire() for e in entries])
        return
    if fmt not in ("text", "markdown"):
        fail("--format must be text, markdown or messages", code=2)
    typer.echo(_with_manager(lambda m: m.get_history(session_id, limit=limit, format=fmt), read_only=True))


@app.command()
def export(
    session_id: str,
    fmt: Annotated[str, typer.Option("--format", help="markdown, json or jsonl")] = "markdown",
    metadata: Annotated[bool, typer.Option("--metadata", help="include session metadata")] = False,
    out: Annotated[Path | None, typer.Option(help="write to this file instead of stdout")] = None,
) -> None:
    """Export a session's visible transcript."""
    if fmt not in ("markdown", "json", "jsonl"):
        fail("--format must be markdown, json or jsonl", code=2)
    chosen: Literal["markdown", "json", "jsonl"] = fmt  # type: ignore[assignment]
    text = _with_manager(lambda m: m.export(session_id, format=chosen, include_metadata=metadata), read_only=True)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)
        console.print(f"wrote {len(text)} characters to {out}")


@app.command()
def cleanup(
    older_than: Annotated[str, typer.Option(help="inactive longer than, e.g. 30d, 12h")] = "30d",
    keep_checkpoints: Annotated[
        bool, typer.Option(help="keep checkpoints and the entries they need (later entries go)")
    ] = True,
    agent: Annotated[str | None, typer.Option(help="only this agent")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="report exactly what would go, delete nothing")] = False,
    include_active: Annotated[bool, typer.Option("--include-active", help="active sessions too")] = False,
    budget: Annotated[
        bool,
        typer.Option("--budget", help="instead: bring the agent under its store budget (max_store_bytes)"),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Delete archived sessions inactive for longer than --older-than, with their transcripts."""

    async def run(manager: Any) -> Any:
        with Progress(transient=True, console=console) as progress:
            progress.add_task("cleaning up" if not dry_run else "finding old sessions", total=None)
            if budget:
                return await manager.cleanup_budget(agent_id=agent, dry_run=dry_run)
            return await manager.cleanup(
                older_than=older_than,
                keep_checkpoints=keep_checkpoints,
                agent_id=agent,
                dry_run=dry_run,
                include_active=include_active,
            )

    report = _with_manager(run)
    doc = {
        "dryRun": report.dry_run,
        "sessions": report.sessions,
        "entries": report.entries,
        "checkpoints": report.checkpoints,
        "summaries": report.summaries,
        "keptWithCheckpoints": report.kept_with_checkpoints,
    }
    if as_json:
        print_json(doc)
        return
    verb = "would delete" if report.dry_run else "deleted"
    console.print(
        f"{verb} {plural(report.sessions, 'session')} ({plural(report.entries, 'entry', 'entries')},"
        f" {plural(report.checkpoints, 'checkpoint')}); kept {report.kept_with_checkpoints} with checkpoints"
    )


@checkpoints_app.command("list")
def checkpoints_list(session_id: str, as_json: JsonOption = False) -> None:
    """Checkpoints of the session's slot (its archived sessions included)."""
    found = _with_manager(lambda m: m.list_checkpoints(session_id, whole_slot=True), read_only=True)
    if as_json:
        print_json([c.to_wire() for c in found])
        return
    table(
        "Checkpoints",
        ["id", "session", "name", "messages", "created"],
        [(c.id, c.session_id, c.name, c.message_count, f"{c.created_at:%Y-%m-%d %H:%M}") for c in found],
    )


@checkpoints_app.command("save")
def checkpoints_save(
    session_id: str, name: str, description: Annotated[str | None, typer.Option()] = None, as_json: JsonOption = False
) -> None:
    """Save a checkpoint of the session's visible history."""
    checkpoint = _with_manager(lambda m: m.save_checkpoint(session_id, name, description))
    if as_json:
        print_json(checkpoint.to_wire())
    else:
        console.print(f"saved {checkpoint.id} ({plural(checkpoint.message_count, 'message')})")


@checkpoints_app.command("restore")
def checkpoints_restore(checkpoint_id: str, as_json: JsonOption = False) -> None:
    """Restore a checkpoint (reactivating its session if it was archived)."""
    session = _with_manager(lambda m: m.restore_checkpoint(checkpoint_id))
    if as_json:
        print_json(session.to_wire())
    else:
        console.print(f"restored {checkpoint_id}: session {session.id} has {plural(session.message_count, 'message')}")


@checkpoints_app.command("delete")
def checkpoints_delete(checkpoint_id: str) -> None:
    """Delete a checkpoint."""
    _with_manager(lambda m: m.delete_checkpoint(checkpoint_id))
    console.print(f"deleted {checkpoint_id}")


@app.command("rotate-key")
def rotate_key(
    batch: Annotated[int, typer.Option(help="records per store round trip")] = 500,
    as_json: JsonOption = False,
) -> None:
    """Re-encrypt every record under the primary key (resumable; workers may keep running)."""
    from worker.engine.crypto import EncryptingCodec
    from worker.sessions.rotation import count_pending, rotate

    async def run(manager: Any) -> Any:
        codec = manager.transcript.codec
        if not isinstance(codec, EncryptingCodec) or not codec.seal_new:
            fail(
                "rotate-key needs SESSIONS_ENCRYPT_TRANSCRIPTS=true and SESSIONS_ENCRYPTION_KEYS "
                "(the first key is the primary)"
            )
        total = await count_pending(manager.store, codec)
        with Progress(console=console, transient=as_json) as progress:
            task = progress.add_task(f"re-sealing under {codec.ring.primary}", total=total)
            return await rotate(manager.store, codec, batch=batch, progress=lambda n: progress.advance(task, n))

    report = _with_manager(run)
    doc = {
        "primary": report.primary,
        "entries": report.entries,
        "checkpoints": report.checkpoints,
        "summaries": report.summaries,
        "skipped": report.skipped,
    }
    if as_json:
        print_json(doc)
    else:
        console.print(
            f"re-sealed {plural(report.entries, 'entry', 'entries')}, {plural(report.checkpoints, 'checkpoint')}"
            f" and {plural(report.summaries, 'summary', 'summaries')} under key {report.primary}"
        )
