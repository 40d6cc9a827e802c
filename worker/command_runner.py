"""Running chat commands for one user against their own slot, and phrasing the replies."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from schemas import AgentSettings, SessionEntry
from worker.commands import HELP, Command
from worker.delivery import clean_id, normalize_channel
from worker.errors import InvalidArgument
from worker.manager import SessionManager
from worker.scope import ChatAddress

DEFAULT_HISTORY = 10
MAX_HISTORY = 100


@dataclass(frozen=True, slots=True)
class CommandResult:
    text: str
    session_id: str | None


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


def checkpoint_id_for(event_id: str) -> str:
    # Derived from the event so a redelivered save finds its own checkpoint instead of a twin.
    return "cp_" + hashlib.sha256(event_id.encode()).hexdigest()[:10]


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 60].rstrip() + "\n… (truncated; use the export API or CLI for the rest)"


def describe_session(session: SessionEntry, settings: AgentSettings) -> str:
    reset = settings.reset
    policy = {
        "off": "off",
        "daily": f"daily at {reset.daily_at} {reset.time_zone}",
        "idle": f"after {reset.idle_minutes} idle minutes",
        "daily+idle": f"daily at {reset.daily_at} {reset.time_zone} or after {reset.idle_minutes} idle minutes",
    }[reset.mode]
    return (
        f"Session {session.id} ({session.status})\n"
        f"Created: {session.created_at:%Y-%m-%d %H:%M} UTC\n"
        f"Last activity: {session.last_activity_at:%Y-%m-%d %H:%M} UTC\n"
        f"Messages: {session.message_count}\n"
        f"Tokens: {session.input_tokens} in / {session.output_tokens} out\n"
        f"Scope: {settings.scope}\n"
        f"Auto-reset: {policy}"
    )


class CommandRunner:
    def __init__(self, manager: SessionManager, *, max_reply_chars: int = 4000) -> None:
        self._manager = manager
        self._max_reply_chars = max_reply_chars

    async def run(self, command: Command, address: ChatAddress, event_id: str) -> CommandResult:
        """Run the command for `address`'s user; raises SessionsError subclasses for bad input."""
        settings = await self._manager.get_settings(address.agent_id)
        if command.admin_only:
            if not is_admin(settings, address):
                return CommandResult(
                    f"Only the agent's admins can change {command.usage.split(' ')[1]} settings.", None
                )
            return CommandResult(await self._settings_command(command, address), None)
        if command.name in ("new", "reset"):
            reason: Literal["new", "reset"] = "new" if command.name == "new" else "reset"
            resolution = await self._manager.reset_address(address, reason, event_id)
            verb = "New session started" if reason == "new" else "Session reset; new session"
            return CommandResult(f"{verb}: {resolution.session.id}.", resolution.session.id)
        if command.name == "help":
            return CommandResult(HELP, None)
        session = (await self._manager.resolve(address)).session
        text = await self._session_command(command, session, settings, event_id)
        return CommandResult(_clip(text, self._max_reply_chars), session.id)

    async def _settings_command(self, command: Command, address: ChatAddress) -> str:
        agent = address.agent_id
        if command.sub == "scope":
            settings = await self._manager.set_scope(command.args[0], agent_id=agent)
            return f"Session scope is now {settings.scope}."
        if command.sub == "reset-time":
            zone = command.args[1] if len(command.args) > 1 else None
            settings = await self._manager.set_reset_time(command.args[0], time_zone=zone, agent_id=agent)
            return f"Daily reset at {settings.reset.daily_at} {settings.reset.time_zone} (mode {settings.reset.mode})."
        minutes = _minutes(command.args[0])
        settings = await self._manager.set_idle_reset(minutes, agent_id=agent)
        if minutes == 0:
            return f"Idle reset is off (mode {settings.reset.mode})."
        return f"Sessions reset after {minutes} idle minutes (mode {settings.reset.mode})."

    async def _session_command(
        self, command: Command, session: SessionEntry, settings: AgentSettings, event_id: str
    ) -> str:
        key = (command.name, command.sub)
        manager = self._manager
        if key == ("session", None):
            return describe_session(session, settings)
        if key == ("session", "list"):
            members = await manager.slot_sessions(session.id)
            lines = [
                f"{'*' if m.status == 'active' else '-'} {m.id} · {m.message_count} messages · "
                f"{m.last_activity_at:%Y-%m-%d %H:%M} · {m.status if m.status == 'active' else m.archived_reason}"
                for m in members[:20]
            ]
            return "Your sessions:\n" + "\n".join(lines)
        if key == ("checkpoint", "save"):
            description = command.args[1] if len(command.args) > 1 else None
            checkpoint = await manager.save_checkpoint(
                session.id, command.args[0], description, checkpoint_id=checkpoint_id_for(event_id)
            )
            return f"Checkpoint {checkpoint.id} saved: {checkpoint.name} ({checkpoint.message_count} messages)."
        if key == ("checkpoint", "list"):
            checkpoints = await manager.list_checkpoints(session.id, whole_slot=True)
            if not checkpoints:
                return 'No checkpoints yet. Save one with /checkpoint save "name".'
            return "Checkpoints:\n" + "\n".join(
                f"{c.id}: {c.name} ({c.message_count} messages, {c.created_at:%Y-%m-%d %H:%M})" for c in checkpoints
            )
        if key == ("checkpoint", "restore"):
            restored = await manager.restore_checkpoint(command.args[0], session_id=session.id)
            return f"Restored checkpoint {command.args[0]}: {restored.message_count} messages in session {restored.id}."
        if key == ("checkpoint", "delete"):
            await manager.delete_checkpoint(command.args[0], session_id=session.id)
            return f"Checkpoint {command.args[0]} deleted."
        if key == ("history", "export"):
            return await manager.export(session.id, format="markdown", include_metadata=True)
        if key == ("history", "clear"):
            await manager.clear_history(session.id)
            return "History cleared. The session and its checkpoints are kept."
        limit = min(_count(command.args[0]) if command.args else DEFAULT_HISTORY, MAX_HISTORY)
        history = await manager.get_history(session.id, limit=limit, format="text")
        return history or "No messages yet."


def _minutes(text: str) -> int:
    if not text.isdigit() or int(text) > 525_600:
        raise InvalidArgument(
            f"'{text}' is not a number of minutes; use 0 to turn idle reset off, e.g. /session idle-reset 30"
        )
    return int(text)


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise InvalidArgument(f"'{text}' is not a positive number; e.g. /history 20")
    return int(text)
