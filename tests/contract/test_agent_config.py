"""The agent configuration file: layers and precedence, the `session: maintenance:` block,
validation, and reset policies by chat type and channel (lazily and through the scheduler alike)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from scheduler.sweeps import Sweeper
from schemas.events import EventBase
from tests.conftest import MakeManager
from worker.engine.clock import ManualClock
from worker.sessions.agent_file import ConfigError, load_agent_file

FILE = """
defaults:
  scope: per-peer
  reset: {mode: daily, dailyAt: "04:00", timeZone: Europe/Berlin}
session:
  maintenance: {mode: auto, retention: {maxAge: 60d, maxInactive: 14d, keepMinimum: 3}}
agents:
  support:
    scope: per-channel-peer
    allowed_models: [claude-sonnet]
    context: {maxTokens: 50000}
    reset:
      mode: idle
      idleMinutes: 30
      byType: {group: {idleMinutes: 240}}
      byChannel: {Slack: {mode: "off"}}
  legacy:
    session: {maintenance: {mode: warn}}
"""


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "agents.yaml"
    path.write_text(text)
    return str(path)


async def test_layers_and_precedence(make_manager: MakeManager, tmp_path: Path) -> None:
    config = _write(tmp_path, FILE)
    manager = make_manager(config=config, admins=("telegram:1",), context={"max_tokens": 9})
    support, legacy, other = [await manager.get_settings(a) for a in ("support", "legacy", "other")]
    assert (support.scope, support.allowed_models, support.context.max_tokens) == (
        "per-channel-peer",
        ("claude-sonnet",),
        50000,
    )
    assert support.admins == ("telegram:1",)  # the environment's, where the file says nothing
    assert (support.reset.mode, support.reset.idle_minutes, support.reset.time_zone) == ("idle", 30, "Europe/Berlin")
    assert (other.scope, other.reset.mode, other.context.max_tokens) == ("per-peer", "daily", 9)
    assert (other.retention.max_age, other.retention.keep_minimum, other.retention.mode) == ("60d", 3, "enforce")
    assert legacy.retention.mode == "warn" and legacy.retention.max_age == "60d"
    await manager.set_scope("main", agent_id="support")  # a chat command's change wins over the file
    assert (await manager.get_settings("support")).scope == "main"
    explained = {name: source for name, _, source in await manager.agents.explain("support")}
    assert explained["scope"] == "chat commands (stored)"
    assert explained["context.max_tokens"].endswith("agents.support")
    assert explained["reset.time_zone"].endswith("defaults") and explained["admins"] == "environment defaults"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("agents:\n  x:\n    reset: {dailyAt: '25:00'}\n", "agent 'x': reset.dailyAt"),
        ("agents:\n  x:\n    scope: everyone\n", "agent 'x': scope"),
        ("defaults:\n  retention: {maxAge: soon}\n", "defaults: retention.maxAge"),
        ("session: {maintenance: {mode: sometimes}}\n", "session.maintenance.mode must be auto, warn or off"),
        ("agents: [1, 2]\n", "`agents` must be a mapping"),
        ("colour: blue\n", "unknown top-level keys"),
        ("agents: {x: {scope: main}\n", "not valid YAML"),
    ],
)
def test_errors_name_the_file_the_agent_and_the_field(tmp_path: Path, text: str, says: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=says) as caught:
        load_agent_file(path)
    assert str(caught.value).startswith(path)


async def test_reset_policy_by_type_and_channel(make_manager: MakeManager, clock: ManualClock, tmp_path: Path) -> None:
    manager = make_manager(config=_write(tmp_path, FILE))
    direct = await manager.get_or_create_session(agent_id="support", user_id="1", channel_id="telegram")
    group = await manager.get_or_create_session(
        agent_id="support", peer_id="-1", channel_id="telegram", chat_type="group"
    )
    slack = await manager.get_or_create_session(agent_id="support", user_id="1", channel_id="slack")
    clock.advance(timedelta(minutes=45))  # past the 30 idle minutes, within the group's 240
    emitted: list[EventBase] = []

    async def emit(event: EventBase, key: str) -> None:
        emitted.append(event)

    report = await Sweeper(manager.store, manager.agents, clock, emit).reset_sweep()
    assert [getattr(e, "session_id", None) for e in emitted] == [direct.id] and report.emitted == 1
    again = {
        "direct": await manager.get_or_create_session(agent_id="support", user_id="1", channel_id="telegram"),
        "group": await manager.get_or_create_session(
            agent_id="support", peer_id="-1", channel_id="telegram", chat_type="group"
        ),
        "slack": await manager.get_or_create_session(agent_id="support", user_id="1", channel_id="slack"),
    }
    assert again["direct"].id != direct.id  # reset lazily too
    assert (again["group"].id, again["slack"].id) == (group.id, slack.id)
