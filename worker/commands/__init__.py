"""The chat commands: declared once in `registry`, parsed in `parsing`, run by `runner`."""

from worker.commands.parsing import Command, CommandError, is_command, parse
from worker.commands.registry import SYNTAXES, commands_markdown, help_text
from worker.commands.runner import CommandRunner


def parse_command(text: str) -> Command:
    return parse(text, SYNTAXES)


def command_for(name: str, sub: str | None, args: tuple[str, ...]) -> Command:
    """A command built by the worker itself (for checkpoint events), as if it had been typed."""
    return Command(SYNTAXES[(name, sub)], args)


__all__ = [
    "Command",
    "CommandError",
    "CommandRunner",
    "command_for",
    "commands_markdown",
    "help_text",
    "is_command",
    "parse_command",
]
