"""Every chat command, declared once: how it is written, who may run it, and what runs it.

/help, the usage errors and the README's command table are all generated from COMMANDS.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from worker.commands import handlers as do
from worker.commands.handlers import CommandContext, CommandResult
from worker.commands.parsing import Syntax

Handler = Callable[[CommandContext], Awaitable[CommandResult]]
# What a command needs of the slot's session: none, the active one if any, or one opened for it.
SessionNeed = Literal["none", "peek", "open"]
_SUB = re.compile(r"[a-z][a-z-]*")


@dataclass(frozen=True, slots=True)
class ChatCommand:
    syntax: Syntax
    handler: Handler
    session: SessionNeed


def _command(
    usage: str, help: str, handler: Handler, session: SessionNeed, arity: tuple[int, int] = (0, 0), **flags: bool
) -> ChatCommand:
    words = usage.split()  # "/name [sub] <arguments...>": a sub-command is a plain lower-case word
    name, sub = words[0][1:], (words[1] if len(words) > 1 and _SUB.fullmatch(words[1]) else None)
    syntax = Syntax(name, sub, usage, help, arity, read_only=session == "peek", **flags)
    return ChatCommand(syntax, handler, session)


COMMANDS: tuple[ChatCommand, ...] = (
    _command("/new [model]", "start a new conversation (optionally with a model)", do.start_new, "none", (0, 1)),
    _command("/reset", "reset the current session", do.start_new, "none"),
    _command("/session", "show this session", do.show_session, "peek"),
    _command("/session list", "list your sessions", do.list_sessions, "peek"),
    _command(
        "/session resume [id]",
        "undo a reset: back to the previous session (or one from /session list)",
        do.resume_session,
        "none",
        (0, 1),
    ),
    _command("/session model [name|default]", "show or set this session's model", do.session_model, "peek", (0, 1)),
    _command(
        '/checkpoint save "name" [description]',
        "save a checkpoint",
        do.save_checkpoint,
        "open",
        (1, 2),
        rest_is_one=True,
    ),
    _command("/checkpoint list", "list checkpoints", do.list_checkpoints, "peek"),
    _command("/checkpoint restore <id>", "restore a checkpoint", do.restore_checkpoint, "open", (1, 1)),
    _command("/checkpoint delete <id>", "delete a checkpoint", do.delete_checkpoint, "open", (1, 1)),
    _command("/history [N]", "show the last N messages (default 10)", do.show_history, "peek", (0, 1)),
    _command("/history export", "export the conversation as markdown", do.export_history, "peek"),
    _command("/history clear", "clear the history (keeps the session)", do.clear_history, "open"),
    _command(
        "/session scope main|peer|channel|account", "who shares a session", do.set_scope, "none", (1, 1), admin=True
    ),
    _command(
        "/session reset-time HH:MM [Area/City]", "daily reset time", do.set_reset_time, "none", (1, 2), admin=True
    ),
    _command(
        "/session idle-reset N",
        "reset after N idle minutes, 0 for never",
        do.set_idle_reset,
        "none",
        (1, 1),
        admin=True,
    ),
)


async def _help(ctx: CommandContext) -> CommandResult:
    return CommandResult(help_text(), None)


HELP_COMMAND = _command("/help", "this list", _help, "none")
BY_WORDS: dict[tuple[str, str | None], ChatCommand] = {
    (c.syntax.name, c.syntax.sub): c for c in (*COMMANDS, HELP_COMMAND)
}
SYNTAXES = {words: command.syntax for words, command in BY_WORDS.items()}


def help_text() -> str:
    lines = [f"{c.syntax.usage} - {c.syntax.help}{' (admins)' if c.syntax.admin else ''}" for c in BY_WORDS.values()]
    return "Session commands:\n" + "\n".join(lines)


def commands_markdown() -> str:
    """The README's command table."""
    rows = ["| command | what it does | who |", "|---|---|---|"]
    for command in BY_WORDS.values():
        syntax = command.syntax
        who = "admins" if syntax.admin else "anyone, on their own sessions"
        usage = syntax.usage.replace("|", "\\|")  # a bare pipe would split the table cell
        rows.append(f"| `{usage}` | {syntax.help} | {who} |")
    return "\n".join(rows)
