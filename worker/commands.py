"""Chat command parsing: '/checkpoint save "name" desc' -> a Command, or a helpful error."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

HELP = """Session commands:
/new - start a new conversation
/reset - reset the current session
/session - show this session
/session list - list your sessions
/checkpoint save "name" [description] - save a checkpoint
/checkpoint list - list checkpoints
/checkpoint restore <id> - restore a checkpoint
/checkpoint delete <id> - delete a checkpoint
/history [N] - show the last N messages (default 10)
/history export - export the conversation as markdown
/history clear - clear the history (keeps the session)
/session scope main|channel|peer - who shares a session (admins)
/session reset-time HH:MM [Area/City] - daily reset time (admins)
/session idle-reset N - reset after N idle minutes, 0 for never (admins)
/help - this list"""

# (name, sub-command) -> argument usage shown when the arguments are wrong.
USAGE = {
    ("new", None): "/new",
    ("reset", None): "/reset",
    ("help", None): "/help",
    ("session", None): "/session",
    ("session", "list"): "/session list",
    ("session", "scope"): "/session scope main|channel|peer",
    ("session", "reset-time"): "/session reset-time HH:MM [Area/City]",
    ("session", "idle-reset"): "/session idle-reset N",
    ("checkpoint", "save"): '/checkpoint save "name" [description]',
    ("checkpoint", "list"): "/checkpoint list",
    ("checkpoint", "restore"): "/checkpoint restore <id>",
    ("checkpoint", "delete"): "/checkpoint delete <id>",
    ("history", None): "/history [N]",
    ("history", "export"): "/history export",
    ("history", "clear"): "/history clear",
}
ADMIN_ONLY = {("session", "scope"), ("session", "reset-time"), ("session", "idle-reset")}
_ARITY = {  # (min, max) positional arguments after the sub-command
    ("session", "scope"): (1, 1),
    ("session", "reset-time"): (1, 2),
    ("session", "idle-reset"): (1, 1),
    ("checkpoint", "save"): (1, 2),
    ("checkpoint", "restore"): (1, 1),
    ("checkpoint", "delete"): (1, 1),
    ("history", None): (0, 1),
}


class CommandError(ValueError):
    """The command could not be understood; the message says how to write it."""


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    sub: str | None
    args: tuple[str, ...]

    @property
    def admin_only(self) -> bool:
        return (self.name, self.sub) in ADMIN_ONLY

    @property
    def usage(self) -> str:
        return USAGE[(self.name, self.sub)]


def is_command(text: str) -> bool:
    return text.lstrip().startswith("/")


def _split(text: str) -> list[str]:
    try:
        return shlex.split(text.strip())
    except ValueError as exc:
        raise CommandError(f"could not read that command ({exc}); put names in matching quotes") from exc


def parse_command(text: str) -> Command:
    words = _split(text)
    if not words or not words[0].startswith("/") or len(words[0]) < 2:
        raise CommandError("commands start with '/', e.g. /help")
    # Telegram appends the bot's name in groups: /new@MyBot.
    name = words[0][1:].split("@", 1)[0].lower()
    rest = words[1:]
    subs = {sub for (known, sub) in USAGE if known == name and sub is not None}
    if not any(known == name for known, _ in USAGE):
        raise CommandError(f"unknown command /{name}. Send /help for the list of commands.")
    sub = None
    if rest and rest[0].lower() in subs:
        sub, rest = rest[0].lower(), rest[1:]
    elif rest and (name, None) not in _ARITY:
        choices = ", ".join(sorted(subs)) or "no arguments"
        raise CommandError(f"unknown option '{rest[0]}' for /{name}; try {choices}")
    if (name, sub) not in USAGE:
        raise CommandError(f"/{name} needs one of: {', '.join(sorted(subs))}")
    if (name, sub) == ("checkpoint", "save") and len(rest) > 2:
        # Everything after the quoted name is the description, quoted or not.
        rest = [rest[0], " ".join(rest[1:])]
    low, high = _ARITY.get((name, sub), (0, 0))
    if not low <= len(rest) <= high:
        raise CommandError(f"usage: {USAGE[(name, sub)]}")
    return Command(name, sub, tuple(rest))
