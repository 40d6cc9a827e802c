"""The README's generated sections match the models, and the CLI prints the same references."""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_sections_are_generated_from_the_models() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "ops/scripts/update-docs.py"), "--check"], cwd=ROOT, check=False
    )
    assert result.returncode == 0, "README is stale: run .venv/bin/python ops/scripts/update-docs.py"


def test_readme_starts_with_the_two_commands() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    block = lines[lines.index("```sh") + 1 : lines.index("```sh") + 3]
    assert block[0].startswith("make run") and block[1].startswith("make test")
    assert (ROOT / ".ci/run").read_text().strip().endswith("make test")


def test_generated_sections_mention_every_event_and_setting() -> None:
    module = runpy.run_path(str(ROOT / "ops/scripts/update-docs.py"))
    generated = module["reference_pages"]()
    for event_type in ("message.inbound", "checkpoint.save", "session.reset", "summarize.request"):
        assert event_type in generated["contracts.md"]
    for variable in ("AMQP_URL", "MONGODB_URL", "SESSIONS_STORAGE", "SESSIONS_ENCRYPTION_KEYS", "SESSIONS_SHARDS"):
        assert variable in generated["settings.md"]
