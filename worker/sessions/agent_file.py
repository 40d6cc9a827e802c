"""The agent configuration file (SESSIONS_CONFIG, or the library's `config=`): YAML with defaults
and a section per agent. Keys are camelCase or snake_case. The `session: maintenance:` block is accepted as written,
at the top or in an agent's section:

    defaults: {scope: per-peer, reset: {mode: daily, dailyAt: "04:00", timeZone: Europe/Berlin}}
    session: {maintenance: {mode: auto, retention: {maxAge: 90d, maxInactive: 30d, keepMinimum: 10}}}
    agents:
      support:
        scope: per-channel-peer
        admins: ["telegram:123"]
        identityLinks: {alice: ["telegram:111", "discord:222"]}
        allowedModels: [claude-sonnet, gpt-4o]
        encryption: true
        context: {maxTokens: 50000, strategy: smart}
        reset: {mode: idle, idleMinutes: 120, byType: {group: {mode: daily}}, byChannel: {slack: {mode: "off"}}}
        retention: {maxAge: 30d, keepMinimum: 5, mode: warn}

Precedence: settings changed by chat commands (stored per agent) > the agent's section > the
file's defaults (then its top-level `session:` block) > environment defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from schemas import AgentSettings
from schemas.base import describe_errors
from worker.errors import InvalidArgument

Layer = dict[str, Any]  # partial settings, snake_case, as AgentSettings.model_dump(exclude_unset=True) gives
_MAINTENANCE_MODES = {"auto": "enforce", "enforce": "enforce", "warn": "warn", "off": "off"}


class ConfigError(InvalidArgument):
    """The configuration file cannot be used; the message names the file, the agent and the field."""

    code = "config"


@dataclass(frozen=True, slots=True)
class AgentFile:
    path: str
    defaults: Layer = field(default_factory=dict)
    agents: dict[str, Layer] = field(default_factory=dict)

    def layers_for(self, agent_id: str) -> list[tuple[str, Layer]]:
        """The file's layers for an agent, weakest first, each with where it came from."""
        named = [(f"{self.path}: defaults", self.defaults)]
        if agent_id in self.agents:
            named.append((f"{self.path}: agents.{agent_id}", self.agents[agent_id]))
        return named


def load_agent_file(path: str | Path) -> AgentFile:
    """Read and validate the file: every agent's settings must be valid as merged."""
    where = str(path)
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read the agent configuration ({exc.strerror or exc})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping with `defaults` and `agents`")
    unknown = set(raw) - {"defaults", "agents", "session"}
    if unknown:
        raise ConfigError(f"{where}: unknown top-level keys {sorted(unknown)}; use defaults, agents, session")
    top = {"session": raw["session"]} if "session" in raw else {}
    defaults = _layer(where, "defaults", {**_section(raw, "defaults", where), **top})
    agents = {
        str(agent_id): _layer(where, f"agent {agent_id!r}", section or {})
        for agent_id, section in _section(raw, "agents", where).items()
    }
    loaded = AgentFile(where, defaults, agents)
    for agent_id in agents:
        merged_settings(AgentSettings(agent_id=agent_id), [layer for _, layer in loaded.layers_for(agent_id)])
    return loaded


def merged_settings(base: AgentSettings, layers: list[Layer]) -> AgentSettings:
    merged: Layer = base.model_dump()
    for layer in layers:
        merged = deep_merge(merged, layer)
    try:
        return AgentSettings.model_validate(merged)
    except ValidationError as exc:
        raise InvalidArgument(f"invalid settings for agent {base.agent_id}: {describe_errors(exc)}") from exc


def deep_merge(base: Layer, top: Layer) -> Layer:
    out = dict(base)
    for key, value in top.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _section(raw: dict[str, Any], name: str, where: str) -> dict[str, Any]:
    value = raw.get(name) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: `{name}` must be a mapping")
    return value


def _layer(where: str, what: str, section: dict[str, Any]) -> Layer:
    """One section as partial settings: aliases resolved, validated, only what it sets."""
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: {what} must be a mapping")
    body = {key: value for key, value in section.items() if key not in ("session", "encryption")}
    if "encryption" in section:
        body["encrypt_transcripts"] = section["encryption"]
    body.update(_maintenance_block(section, where, what))
    body.pop("agent_id", None)
    body.pop("agentId", None)
    try:
        return AgentSettings.model_validate(body).model_dump(exclude_unset=True)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {what}: {describe_errors(exc)}") from exc


def _maintenance_block(section: dict[str, Any], where: str, what: str) -> Layer:
    """The `session: {maintenance: {mode, retention: {...}}}` block as a retention layer."""
    block = section.get("session")
    if block is None:
        return {}
    maintenance = block.get("maintenance") if isinstance(block, dict) else None
    if not isinstance(maintenance, dict):
        raise ConfigError(f"{where}: {what}: session must hold a `maintenance` mapping (mode, retention)")
    retention = dict(maintenance.get("retention") or {})
    if "mode" in maintenance:
        mode = _MAINTENANCE_MODES.get(str(maintenance["mode"]))
        if mode is None:
            raise ConfigError(f"{where}: {what}: session.maintenance.mode must be auto, warn or off")
        retention["mode"] = mode
    return {"retention": retention}
