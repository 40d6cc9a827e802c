"""Every chat command parses from the way its usage says to write it, and refuses other shapes."""

from __future__ import annotations

import pytest

from worker.commands import CommandError, help_text, parse_command
from worker.commands.registry import BY_WORDS

# One way to write each command, and the arguments it must parse to. A new command needs a line.
EXAMPLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "/new [model]": ("/new gpt-4o", ("gpt-4o",)),
    "/reset": ("/reset", ()),
    "/session": ("/session", ()),
    "/session list": ("/session LIST", ()),
    "/session resume [id]": ("/session resume s_1", ("s_1",)),
    "/session model [name|default]": ("/session model default", ("default",)),
    '/checkpoint save "name" [description]': (
        '/checkpoint save "before refactor" the big one',
        ("before refactor", "the big one"),
    ),
    "/checkpoint list": ("/checkpoint list", ()),
    "/checkpoint restore <id>": ("/checkpoint restore cp_1", ("cp_1",)),
    "/checkpoint delete <id>": ("/checkpoint delete cp_1", ("cp_1",)),
    "/history [N]": ("/history 20", ("20",)),
    "/history export": ("/history export", ()),
    "/history clear": ("/history clear", ()),
    "/session scope main|peer|channel|account": ("/session scope peer", ("peer",)),
    "/session reset-time HH:MM [Area/City]": ("/session reset-time 04:00 Europe/Berlin", ("04:00", "Europe/Berlin")),
    "/session idle-reset N": ("/session idle-reset 30", ("30",)),
    "/help": ("/help@MyBot", ()),
}


def test_every_command_has_an_example() -> None:
    assert sorted(EXAMPLES) == sorted(command.syntax.usage for command in BY_WORDS.values())


@pytest.mark.parametrize("usage", sorted(EXAMPLES))
def test_each_command_parses_as_its_usage_says(usage: str) -> None:
    text, args = EXAMPLES[usage]
    command = parse_command(text)
    assert command.usage == usage and command.args == args


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("hello", "commands start with '/'"),
        ("/", "commands start with '/'"),
        ("/frobnicate", "unknown command /frobnicate"),
        ("/checkpoint", "/checkpoint needs one of: delete, list, restore, save"),
        ("/checkpoint restore", "usage: /checkpoint restore <id>"),
        ("/checkpoint restore a b", "usage: /checkpoint restore <id>"),
        ("/reset now", "unknown option 'now' for /reset"),
        ('/checkpoint save "unclosed', "matching quotes"),
        ("/history 1 2", "usage: /history [N]"),
        ("/session model a b", "usage: /session model [name|default]"),
    ],
)
def test_malformed_commands_say_how_to_write_them(text: str, says: str) -> None:
    with pytest.raises(CommandError, match=says.replace("[", r"\[").replace("]", r"\]").replace("|", r"\|")):
        parse_command(text)


def test_help_lists_every_command_once() -> None:
    assert parse_command("/help").name == "help"
    lines = help_text().splitlines()[1:]
    assert [line.split(" - ")[0] for line in lines] == [c.syntax.usage for c in BY_WORDS.values()]
