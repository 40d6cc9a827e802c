"""What each chat command does for one user, against their own slot, and how it answers."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from schemas import AgentSettings, SessionEntry
from worker.commands.parsing import Command
from worker.engine.scope import ChatAddress
from worker.errors import InvalidArgument
from worker.sessions.manager import SessionManager

DEFAULT_HISTORY = 10
MAX_HISTORY = 100
NO_SESSION = "No session yet: send a message to start one."
UNDO = "Send /session resume to go back to the previous session"


@dataclass(frozen=True, slots=True)
class CommandContext:
    manager: SessionManager
    address: ChatAddress
    settings: AgentSettings
    command: Command
    key: str  # the event's scoped key: session openers and checkpoint ids derive from it
    session: SessionEntry | None  # the slot's session, as the command's syntax asks for


@dataclass(frozen=True, slots=True)
class CommandResult:
    text: str
    session_id: str | None
    # Sessions the command archived in other chats, each of which is told once.
    archived_elsewhere: tuple[SessionEntry, ...] = ()


def checkpoint_id_for(key: str) -> str:
    # Derived from the event so a redelivered save finds its own checkpoint instead of a twin.
    return "cp_" + hashlib.sha256(key.encode()).hexdigest()[:10]


def plural(count: int, word: str, words: str | None = None) -> str:
    """'1 message', '2 messages'; `words` for plurals that are not word + 's' (entries)."""
    return f"{count:,} {word}" if count == 1 else f"{count:,} {words or word + 's'}"


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
        f"Model: {model_name(session) or 'the agent default'}\n"
        f"Scope: {settings.scope}\n"
        f"Auto-reset: {policy}"
    )


def model_name(session: SessionEntry) -> str | None:
    model = session.model
    return model if model is None or isinstance(model, str) else model.name


def _opened(ctx: CommandContext) -> SessionEntry:
    if ctx.session is None:  # the runner opens one for every command that needs it
        raise InvalidArgument(NO_SESSION)
    return ctx.session


# Sessions ---------------------------------------------------------------------------------------
async def start_new(ctx: CommandContext) -> CommandResult:
    model = ctx.command.args[0] if ctx.command.args else None
    if model is not None:
        ctx.manager.check_model(ctx.settings, model)
    reason: Literal["new", "reset"] = "new" if ctx.command.name == "new" else "reset"
    resolution = await ctx.manager.reset_address(ctx.address, reason, ctx.key)
    session = resolution.session
    verb = "New session started" if reason == "new" else "Session reset; new session"
    undo = f" {UNDO} ({resolution.archived.id})." if resolution.archived is not None else ""
    if model is None:
        return CommandResult(f"{verb}: {session.id}.{undo}", session.id)
    await ctx.manager.set_model(session.id, model)
    return CommandResult(f"{verb}: {session.id}, model {model}.{undo}", session.id)


async def resume_session(ctx: CommandContext) -> CommandResult:
    wanted = ctx.command.args[0] if ctx.command.args else None
    resumed = await ctx.manager.resume(ctx.address, wanted, key=ctx.key)
    session, replaced = resumed.session, resumed.replaced
    text = f"Resumed session {session.id} ({plural(session.message_count, 'message')})."
    if replaced is not None:
        text += (
            f" {plural(resumed.carried, 'message')} since the reset added at its end; session {replaced.id}"
            f" is kept: /session resume {replaced.id} switches back."
        )
    return CommandResult(text, session.id)


async def show_session(ctx: CommandContext) -> CommandResult:
    if ctx.session is None:
        return CommandResult(NO_SESSION, None)
    text = describe_session(ctx.session, ctx.settings)
    identity = ctx.settings.identity_of(ctx.address.delivery().channel, ctx.address.person)
    if identity is not None and ctx.settings.scope == "per-peer":
        text += f"\nIdentity: {identity} (shared with your linked accounts)"
    return CommandResult(text, ctx.session.id)


async def list_sessions(ctx: CommandContext) -> CommandResult:
    members = await ctx.manager.slot_members(ctx.address)
    if not members:
        return CommandResult(NO_SESSION, None)
    lines = [
        f"{'*' if m.status == 'active' else '-'} {m.id} · {plural(m.message_count, 'message')} · "
        f"{m.last_activity_at:%Y-%m-%d %H:%M} · {m.status if m.status == 'active' else m.archived_reason}"
        for m in members[:20]
    ]
    return CommandResult("Your sessions:\n" + "\n".join(lines), None if ctx.session is None else ctx.session.id)


async def session_model(ctx: CommandContext) -> CommandResult:
    if not ctx.command.args:
        if ctx.session is None:
            return CommandResult(NO_SESSION, None)
        name = model_name(ctx.session)
        return CommandResult(f"Model: {name or 'the agent default'}.", ctx.session.id)
    wanted = ctx.command.args[0]
    model = None if wanted.lower() == "default" else wanted
    session = ctx.session or (await ctx.manager.resolve(ctx.address, ctx.key)).session
    await ctx.manager.set_model(session.id, model)
    text = f"Model set to {model} for this session." if model else "Model back to the agent default."
    return CommandResult(text, session.id)


# Agent settings (admins) ------------------------------------------------------------------------
async def set_scope(ctx: CommandContext) -> CommandResult:
    change = await ctx.manager.change_scope(ctx.command.args[0], agent_id=ctx.address.agent_id, key=ctx.key)
    archived = f"; {plural(len(change.archived), 'session')} that no longer fit it archived (kept)"
    text = f"Session scope is now {change.settings.scope}{archived if change.archived else ''}."
    return CommandResult(text, None, change.archived)


async def set_reset_time(ctx: CommandContext) -> CommandResult:
    args = ctx.command.args
    zone = args[1] if len(args) > 1 else None
    settings = await ctx.manager.set_reset_time(args[0], time_zone=zone, agent_id=ctx.address.agent_id)
    reset = settings.reset
    return CommandResult(f"Daily reset at {reset.daily_at} {reset.time_zone} (mode {reset.mode}).", None)


async def set_idle_reset(ctx: CommandContext) -> CommandResult:
    minutes = _minutes(ctx.command.args[0])
    settings = await ctx.manager.set_idle_reset(minutes, agent_id=ctx.address.agent_id)
    if minutes == 0:
        return CommandResult(f"Idle reset is off (mode {settings.reset.mode}).", None)
    return CommandResult(f"Sessions reset after {minutes} idle minutes (mode {settings.reset.mode}).", None)


# Checkpoints ------------------------------------------------------------------------------------
async def save_checkpoint(ctx: CommandContext) -> CommandResult:
    session, args = _opened(ctx), ctx.command.args
    description = args[1] if len(args) > 1 else None
    checkpoint = await ctx.manager.save_checkpoint(
        session.id, args[0], description, checkpoint_id=checkpoint_id_for(ctx.key)
    )
    count = plural(checkpoint.message_count, "message")
    return CommandResult(f"Checkpoint {checkpoint.id} saved: {checkpoint.name} ({count}).", session.id)


async def list_checkpoints(ctx: CommandContext) -> CommandResult:
    members = await ctx.manager.slot_members(ctx.address)
    checkpoints = await ctx.manager.checkpoints_of(members)
    session_id = None if ctx.session is None else ctx.session.id
    if not checkpoints:
        return CommandResult('No checkpoints yet. Save one with /checkpoint save "name".', session_id)
    lines = [
        f"{c.id}: {c.name} ({plural(c.message_count, 'message')}, {c.created_at:%Y-%m-%d %H:%M})" for c in checkpoints
    ]
    return CommandResult("Checkpoints:\n" + "\n".join(lines), session_id)


async def restore_checkpoint(ctx: CommandContext) -> CommandResult:
    session, checkpoint_id = _opened(ctx), ctx.command.args[0]
    restored = await ctx.manager.restore_checkpoint(checkpoint_id, session_id=session.id)
    count = plural(restored.message_count, "message")
    return CommandResult(f"Restored checkpoint {checkpoint_id}: {count} in session {restored.id}.", restored.id)


async def delete_checkpoint(ctx: CommandContext) -> CommandResult:
    session, checkpoint_id = _opened(ctx), ctx.command.args[0]
    await ctx.manager.delete_checkpoint(checkpoint_id, session_id=session.id, key=ctx.key)
    return CommandResult(f"Checkpoint {checkpoint_id} deleted.", session.id)


# History ----------------------------------------------------------------------------------------
async def show_history(ctx: CommandContext) -> CommandResult:
    limit = min(_count(ctx.command.args[0]) if ctx.command.args else DEFAULT_HISTORY, MAX_HISTORY)
    if ctx.session is None:
        return CommandResult("No messages yet.", None)
    history = await ctx.manager.get_history(ctx.session.id, limit=limit, format="text")
    return CommandResult(history or "No messages yet.", ctx.session.id)


async def export_history(ctx: CommandContext) -> CommandResult:
    if ctx.session is None:
        return CommandResult("No messages yet.", None)
    text = await ctx.manager.export(ctx.session.id, format="markdown", include_metadata=True)
    return CommandResult(text, ctx.session.id)


async def clear_history(ctx: CommandContext) -> CommandResult:
    session = _opened(ctx)
    await ctx.manager.clear_history(session.id)
    return CommandResult("History cleared. The session and its checkpoints are kept.", session.id)


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
