"""Agent settings: stored per agent, defaulting to the manager's options."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pydantic import ValidationError

from schemas import AgentSettings, ResetMode
from schemas.base import describe_errors
from schemas.settings import check_hhmm, check_time_zone
from worker.errors import InvalidArgument, InvalidResetTime, InvalidTimeZone
from worker.scope import parse_scope
from worker.stores.base import SessionStore


class AgentDirectory:
    """Settings by agent. Reads are cached for `ttl` seconds: every event needs the agent's scope
    and reset policy, while settings change rarely (an admin command in any worker reaches the
    others within the ttl)."""

    def __init__(self, store: SessionStore, defaults: AgentSettings, *, ttl: float = 2.0) -> None:
        self._store = store
        self._defaults = defaults
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
        stored = await self._store.get_settings(agent_id)
        settings = stored if stored is not None else self._defaults.model_copy(update={"agent_id": agent_id})
        if changes == self._changes:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[agent_id] = (time.monotonic(), settings)
        return settings

    async def update(self, agent_id: str, **changes: Any) -> AgentSettings:
        self._changes += 1
        self._cache.pop(agent_id, None)
        current = await self._load(agent_id)  # change what is stored now, not a cached copy
        merged = current.model_dump()
        for name, value in changes.items():
            if isinstance(merged.get(name), dict) and isinstance(value, dict):
                merged[name] = {**merged[name], **value}
            else:
                merged[name] = value
        try:
            settings = AgentSettings.model_validate(merged)
        except ValidationError as exc:
            problems = describe_errors(exc)
            raise InvalidArgument(f"invalid settings for agent {agent_id}: {problems}") from exc
        await self._store.save_settings(settings)
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


def _with(mode: ResetMode, part: str) -> ResetMode:
    parts = {p for p in mode.split("+") if p != "off"} | {part}
    return "daily+idle" if parts == {"daily", "idle"} else ("daily" if "daily" in parts else "idle")


def _without(mode: ResetMode, part: str) -> ResetMode:
    parts = {p for p in mode.split("+") if p not in ("off", part)}
    return "daily" if "daily" in parts else ("idle" if "idle" in parts else "off")
