"""Chat command parsing: '/checkpoint save "name" desc' -> a Command, or a helpful error.

What commands exist is declared once, in worker.commands.registry; this module only reads text
against those declarations.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Syntax:
    """How one command is written: its words, its arguments and who may run it."""

    name: str
    sub: str | None
    usage: str
    help: str
    arity: tuple[int, int] = (0, 0)  # (min, max) arguments after the sub-command
    admin: bool = False  # changes agent-wide settings
    read_only: bool = False  # answers from what is stored and never opens a session
    rest_is_one: bool = False  # arguments past the first are one free text (a description)


class CommandError(ValueError):
    """The command could not be understood; the message says how to write it."""


@dataclass(frozen=True, slots=True)
class Command:
    syntax: Syntax
    args: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.syntax.name

    @property
    def sub(self) -> str | None:
        return self.syntax.sub

    @property
    def usage(self) -> str:
        return self.syntax.usage


def is_command(text: str) -> bool:
    return text.lstrip().startswith("/")


def _split(text: str) -> list[str]:
    try:
        return shlex.split(text.strip())
    except ValueError as exc:
        raise CommandError(f"could not read that command ({exc}); put names in matching quotes") from exc


def parse(text: str, syntaxes: Mapping[tuple[str, str | None], Syntax]) -> Command:
    words = _split(text)
    if not words or not words[0].startswith("/") or len(words[0]) < 2:
        raise CommandError("commands start with '/', e.g. /help")
    # Telegram appends the bot's name in groups: /new@MyBot.
    name = words[0][1:].split("@", 1)[0].lower()
    rest = words[1:]
    subs = {sub for (known, sub) in syntaxes if known == name and sub is not None}
    if not any(known == name for known, _ in syntaxes):
        raise CommandError(f"unknown command /{name}. Send /help for the list of commands.")
    plain = syntaxes.get((name, None))
    sub = None
    if rest and rest[0].lower() in subs:
        sub, rest = rest[0].lower(), rest[1:]
    elif rest and (plain is None or plain.arity[1] == 0):
        choices = ", ".join(sorted(subs)) or "no arguments"
        raise CommandError(f"unknown option '{rest[0]}' for /{name}; try {choices}")
    syntax = syntaxes.get((name, sub))
    if syntax is None:
        raise CommandError(f"/{name} needs one of: {', '.join(sorted(subs))}")
    if syntax.rest_is_one and len(rest) > syntax.arity[1]:
        # Everything after the leading arguments is the free text, quoted or not.
        keep = syntax.arity[1] - 1
        rest = [*rest[:keep], " ".join(rest[keep:])]
    low, high = syntax.arity
    if not low <= len(rest) <= high:
        raise CommandError(f"usage: {syntax.usage}")
    return Command(syntax, tuple(rest))
