"""Running chat commands for one user against their own slot."""

from __future__ import annotations

from dataclasses import dataclass

from schemas import AgentSettings, SessionEntry
from schemas.delivery import normalize_channel
from worker.commands.handlers import CommandContext, CommandResult
from worker.commands.parsing import Command
from worker.commands.registry import BY_WORDS, ChatCommand
from worker.engine.delivery import clean_id
from worker.engine.resets import ResetDue
from worker.engine.scope import ChatAddress
from worker.errors import RequestError
from worker.sessions.manager import SessionManager


class CommandRefused(RequestError):
    """The command was understood but cannot be done as asked; the message says why."""

    code = "command-refused"


def admin_key(channel: str | None, person: str | None) -> str | None:
    """'channel:user_id' with the channel normalized as on every other path ('TG ' is 'telegram')."""
    channel, person = normalize_channel(channel), clean_id(person)
    return f"{channel}:{person}" if channel and person else None


def is_admin(settings: AgentSettings, address: ChatAddress) -> bool:
    """Admins are listed as 'channel:user_id' (user ids are only unique within a channel)."""
    key = admin_key(address.channel, address.person)
    if key is None:
        return False
    return any(admin_key(*listed.partition(":")[::2]) == key for listed in settings.admins)


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 60].rstrip() + "\n… (truncated; use the export API or CLI for the rest)"


@dataclass(frozen=True, slots=True)
class OpenedCommand:
    """A command allowed to run, with its session opened, and the reset that opening made, if any."""

    context: CommandContext
    reset: tuple[SessionEntry, ResetDue] | None


class CommandRunner:
    def __init__(self, manager: SessionManager, *, max_reply_chars: int = 4000) -> None:
        self._manager = manager
        self._max_reply_chars = max_reply_chars

    async def open(self, command: Command, address: ChatAddress, key: str) -> OpenedCommand:
        """Check who may run it and open the session it works on (which may reset the chat's:
        `reset` says so, and the caller announces it whatever the command's own result)."""
        settings = await self._manager.get_settings(address.agent_id)
        if command.syntax.admin and not is_admin(settings, address):
            raise CommandRefused(f"Only the agent's admins can change {command.usage.split(' ')[1]} settings.")
        chat_command = BY_WORDS[(command.name, command.sub)]
        session, reset = await self._session_for(chat_command, address, key)
        return OpenedCommand(CommandContext(self._manager, address, settings, command, key, session), reset)

    async def run(self, opened: OpenedCommand) -> CommandResult:
        """Run an opened command; raises SessionsError subclasses for bad input."""
        command = opened.context.command
        result = await BY_WORDS[(command.name, command.sub)].handler(opened.context)
        return CommandResult(_clip(result.text, self._max_reply_chars), result.session_id, result.archived_elsewhere)

    async def _session_for(
        self, command: ChatCommand, address: ChatAddress, key: str
    ) -> tuple[SessionEntry | None, tuple[SessionEntry, ResetDue] | None]:
        """The session the command works on, and the reset that opening it made, if one did."""
        if command.session == "none":
            return None, None
        if command.session == "peek":
            return await self._manager.find_session(address), None
        resolution = await self._manager.resolve(address, key)
        if resolution.archived is None or resolution.due is None:
            return resolution.session, None
        return resolution.session, (resolution.archived, resolution.due)
