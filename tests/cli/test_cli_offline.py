"""The CLI's commands that need no broker, run as a user runs them: model overrides, the agent
configuration file, resume, budgets, and the one-line errors of a mistyped setup."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from worker import create_session_manager
from worker.engine.scope import ChatAddress


def _cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "SESSIONS_DB_PATH": str(tmp_path / "sessions.db"), **env}
    return subprocess.run(
        [sys.executable, "-m", "worker", *args], env=environment, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
async def sessions(tmp_path: Path) -> tuple[str, str]:
    """A chat with a session reset once: (the earlier session, the current one)."""
    async with create_session_manager(db_path=str(tmp_path / "sessions.db")) as manager:
        first = await manager.get_or_create_session(user_id="42", channel_id="telegram")
        await manager.add_message(first.id, "user", "hello")
        second = (await manager.reset_address(ChatAddress(channel="telegram", user_id="42"), "new")).session
        await manager.add_message(second.id, "user", "since the reset")
        return first.id, second.id


async def test_model_show_set_and_clear(tmp_path: Path, sessions: tuple[str, str]) -> None:
    _, current = sessions
    assert "model the agent default" in _cli(tmp_path, "model", current).stdout
    assert "model gpt-4o" in _cli(tmp_path, "model", current, "gpt-4o").stdout
    shown = json.loads(_cli(tmp_path, "show", current, "--json").stdout)
    assert shown["model"] == "gpt-4o"
    assert "model the agent default" in _cli(tmp_path, "model", current, "--clear").stdout
    assert _cli(tmp_path, "model", "s_nope").returncode == 4


async def test_resume_from_the_cli(tmp_path: Path, sessions: tuple[str, str]) -> None:
    first, _ = sessions
    done = _cli(tmp_path, "resume", first)
    assert done.returncode == 0 and f"resumed {first} (1 message since the reset" in done.stdout
    history = _cli(tmp_path, "history", first).stdout
    assert "hello" in history and "since the reset" in history
    assert _cli(tmp_path, "resume", "s_nope").returncode == 4


async def test_cleanup_budget_dry_run_and_real(tmp_path: Path, sessions: tuple[str, str]) -> None:
    config = tmp_path / "agents.yaml"
    config.write_text("defaults:\n  retention: {maxStoreBytes: 10, keepMinimum: 1}\n")
    preview = json.loads(
        _cli(tmp_path, "cleanup", "--budget", "--dry-run", "--json", SESSIONS_CONFIG=str(config)).stdout
    )
    done = json.loads(_cli(tmp_path, "cleanup", "--budget", "--json", SESSIONS_CONFIG=str(config)).stdout)
    assert preview["sessions"] == done["sessions"] == 1 and preview["dryRun"] and not done["dryRun"]


def test_config_check_and_show(tmp_path: Path) -> None:
    good = tmp_path / "agents.yaml"
    good.write_text("agents:\n  support: {scope: per-peer, allowedModels: [o3]}\n")
    assert "ok (1 agent: support)" in _cli(tmp_path, "config", "check", str(good)).stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("agents:\n  support: {reset: {idleMinutes: -1}}\n")
    refused = _cli(tmp_path, "config", "check", str(bad))
    assert refused.returncode == 2 and "agent 'support': reset.idleMinutes" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    missing = _cli(tmp_path, "config", "show", "--agent", "support", SESSIONS_CONFIG=str(good))
    assert missing.returncode == 2 and "no database at" in missing.stderr  # read-only: creates none
    assert not (tmp_path / "sessions.db").exists()


def test_read_only_commands_create_no_database(tmp_path: Path) -> None:
    for args in (("list",), ("show", "s_1"), ("history", "s_1"), ("checkpoints", "list", "s_1")):
        done = _cli(tmp_path, *args, SESSIONS_DB_PATH=str(tmp_path / "typo" / "sessions.db"))
        assert done.returncode == 2 and "no database at" in done.stderr, args
    assert not (tmp_path / "typo").exists()


async def test_a_renamed_setting_is_named_at_start_up(tmp_path: Path, sessions: tuple[str, str]) -> None:
    _, current = sessions
    done = _cli(tmp_path, "show", current, SESSIONS_ACK_DELAY_MS="10")
    assert done.returncode == 0
    assert "SESSIONS_ACK_DELAY_MS is now SESSIONS_ADVANCED__ACK_DELAY_MS" in done.stderr
