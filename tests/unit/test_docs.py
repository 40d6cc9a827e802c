"""The docs: generated parts match the models, the README stays a short guide, and links resolve."""

from __future__ import annotations

import importlib
import re
import runpy
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)


def _pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), *sorted((ROOT / "ops").rglob("*.md"))]


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = _FENCE.sub("", page.read_text())
    return {_anchor(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


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


def test_readme_is_a_short_guide_that_links_the_generated_reference() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) < 300
    for page in ("docs/reference/settings.md", "docs/reference/contracts.md", "docs/benchmarks/README.md"):
        assert f"]({page}" in text, f"README does not link {page}"


def test_relative_links_in_the_docs_resolve() -> None:
    broken = []
    for page in _pages():
        for target in _LINK.findall(_FENCE.sub("", page.read_text())):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, fragment = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            if not resolved.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
            elif fragment and resolved.suffix == ".md" and fragment not in _anchors(resolved):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, broken


def test_anchor_matches_githubs_rule() -> None:
    assert _anchor(" Encryption at rest") == "encryption-at-rest"
    assert _anchor("How `sessions bench` measures") == "how-sessions-bench-measures"
    assert _anchor("Store failures and crash loops (what you see, what you do)") == (
        "store-failures-and-crash-loops-what-you-see-what-you-do"
    )


_CODE = re.compile(r"`([^`\s]+)`")
_TOP = ("worker/", "schemas/", "scheduler/", "benchmarks/", "tests/", "ops/", "docs/", "examples/")


def _names_a_missing_module(dotted: str) -> bool:
    """Whether `worker.a.b.name` names neither a module nor an attribute of one."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(target, attribute):
                return True
            target = getattr(target, attribute)
        return False
    return True


def _generated_locally(name: str) -> bool:
    """Git-ignored files the docs name but a checkout does not hold (keys generated on first use)."""
    return subprocess.run(["git", "check-ignore", "-q", name], cwd=ROOT, check=False).returncode == 0


def test_paths_and_modules_the_docs_name_exist() -> None:
    missing = []
    for page in _pages():
        for name in _CODE.findall(page.read_text()):
            if name.startswith(_TOP) and "*" not in name and "<" not in name:
                if not (ROOT / name.rstrip("/")).exists() and not _generated_locally(name):
                    missing.append(f"{page.relative_to(ROOT)}: {name}")
            elif re.fullmatch(r"worker(\.\w+)+", name) and _names_a_missing_module(name):
                missing.append(f"{page.relative_to(ROOT)}: {name}")
    assert not missing, missing
