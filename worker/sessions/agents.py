"""Agent settings by agent, in layers: what chat commands changed (stored per agent) over the
agent configuration file (its agent's section, then its defaults) over the manager's options."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pydantic import ValidationError

from schemas import AgentSettings, ResetMode
from schemas.base import describe_errors
from schemas.settings import check_hhmm, check_time_zone
from worker.engine.scope import parse_scope
from worker.errors import InvalidArgument, InvalidResetTime, InvalidTimeZone
from worker.sessions.agent_file import AgentFile, Layer, deep_merge, merged_settings
from worker.stores.base import SettingsRecords


class AgentDirectory:
    """Settings by agent. Reads are cached for `ttl` seconds: every event needs the agent's scope
    and reset policy, while settings change rarely (an admin command in any worker reaches the
    others within the ttl)."""

    def __init__(
        self, store: SettingsRecords, defaults: AgentSettings, *, file: AgentFile | None = None, ttl: float = 2.0
    ) -> None:
        self._store = store
        self._defaults = defaults
        self._file = file
        self._ttl = ttl
        self._cache: dict[str, tuple[float, AgentSettings]] = {}
        self._loading: dict[str, asyncio.Future[AgentSettings]] = {}
        self._changes = 0  # bumped by every update: a read that started before one is not cached

    async def get(self, agent_id: str) -> AgentSettings:
        cached = self._cache.get(agent_id)
        if cached is not None and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        # One read per expiry: the events that find the entry expired together share it, rather
        # than each sending the store the same query.
        loading = self._loading.get(agent_id)
        if loading is None:
            loading = self._loading[agent_id] = asyncio.ensure_future(self._load(agent_id))
            loading.add_done_callback(lambda _: self._loading.pop(agent_id, None))
        return await asyncio.shield(loading)

    async def _load(self, agent_id: str) -> AgentSettings:
        changes = self._changes
        settings = self.effective(agent_id, await self._store.get_settings(agent_id))
        if changes == self._changes:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[agent_id] = (time.monotonic(), settings)
        return settings

    def layers(self, agent_id: str, stored: AgentSettings | None) -> list[tuple[str, Layer]]:
        """Where an agent's settings come from, weakest first (the environment's are the base)."""
        named = [] if self._file is None else self._file.layers_for(agent_id)
        if stored is not None:
            named.append(("chat commands (stored)", stored.model_dump(exclude_unset=True, exclude={"agent_id"})))
        return named

    def effective(self, agent_id: str, stored: AgentSettings | None) -> AgentSettings:
        base = self._defaults.model_copy(update={"agent_id": agent_id})
        return merged_settings(base, [layer for _, layer in self.layers(agent_id, stored)])

    async def explain(self, agent_id: str) -> list[tuple[str, Any, str]]:
        """Every effective setting (dotted name, value) and the layer it comes from."""
        stored = await self._store.get_settings(agent_id)
        layers = self.layers(agent_id, stored)
        rows = []
        for name, value in _leaves(self.effective(agent_id, stored).model_dump(mode="json", exclude_none=True)):
            source = next((where for where, layer in reversed(layers) if _has(layer, name)), "environment defaults")
            rows.append((name, value, source))
        return rows

    async def update(self, agent_id: str, **changes: Any) -> AgentSettings:
        """Change settings as a chat command does: stored per agent, over the file and defaults."""
        self._changes += 1
        self._cache.pop(agent_id, None)
        stored = await self._store.get_settings(agent_id)  # what is stored now, not a cached copy
        overrides = deep_merge({} if stored is None else stored.model_dump(exclude_unset=True), changes)
        try:
            changed = AgentSettings.model_validate({**overrides, "agent_id": agent_id})
        except ValidationError as exc:
            problems = describe_errors(exc)
            raise InvalidArgument(f"invalid settings for agent {agent_id}: {problems}") from exc
        settings = self.effective(agent_id, changed)
        await self._store.save_settings(changed)
        self._changes += 1  # reads that started before the save must not cache what they saw
        self._cache[agent_id] = (time.monotonic(), settings)
        return settings

    async def set_scope(self, agent_id: str, scope: str) -> AgentSettings:
        return await self.update(agent_id, scope=parse_scope(scope))

    async def set_reset_time(self, agent_id: str, daily_at: str, time_zone: str | None = None) -> AgentSettings:
        try:
            check_hhmm(daily_at)
        except ValueError as exc:
            raise InvalidResetTime(str(exc)) from exc
        current = await self.get(agent_id)
        reset: dict[str, Any] = {"daily_at": daily_at, "mode": _with(current.reset.mode, "daily")}
        if time_zone is not None:
            try:
                reset["time_zone"] = check_time_zone(time_zone)
            except ValueError as exc:
                raise InvalidTimeZone(str(exc)) from exc
        return await self.update(agent_id, reset=reset)

    async def set_idle_reset(self, agent_id: str, minutes: int) -> AgentSettings:
        current = await self.get(agent_id)
        if minutes <= 0:
            return await self.update(agent_id, reset={"mode": _without(current.reset.mode, "idle")})
        return await self.update(agent_id, reset={"idle_minutes": minutes, "mode": _with(current.reset.mode, "idle")})

    async def set_redaction(
        self, agent_id: str, enabled: bool | None = None, patterns: list[dict[str, str]] | None = None
    ) -> AgentSettings:
        """Switch redaction on or off, or replace the agent's own patterns; None leaves either as is."""
        changes = {name: value for name, value in (("enabled", enabled), ("patterns", patterns)) if value is not None}
        return await self.update(agent_id, redaction=changes)


def _with(mode: ResetMode, part: str) -> ResetMode:
    parts = {p for p in mode.split("+") if p != "off"} | {part}
    return "daily+idle" if parts == {"daily", "idle"} else ("daily" if "daily" in parts else "idle")


def _without(mode: ResetMode, part: str) -> ResetMode:
    parts = {p for p in mode.split("+") if p not in ("off", part)}
    return "daily" if "daily" in parts else ("idle" if "idle" in parts else "off")


def _leaves(values: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and key not in ("identity_links", "by_type", "by_channel"):
            out.extend(_leaves(value, f"{name}."))
        else:
            out.append((name, value))
    return out


def _has(layer: dict[str, Any], dotted: str) -> bool:
    node: Any = layer
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True
