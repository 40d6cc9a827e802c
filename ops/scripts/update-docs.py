"""Regenerate the README's settings and contracts sections from the models.

.venv/bin/python ops/scripts/update-docs.py [--check]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from schemas.docgen import contracts_markdown, settings_markdown
from worker.commands import commands_markdown
from worker.config import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def sections() -> dict[str, str]:
    aliases = {"amqp_url": "AMQP_URL", "mongodb_url": "MONGODB_URL"}
    # One heading level deeper than the generated page: it sits under the README's own section.
    contracts = contracts_markdown().split("\n", 1)[1].replace("\n### ", "\n#### ").replace("\n## ", "\n### ")
    return {
        "settings": settings_markdown(Settings, "SESSIONS_", aliases),
        "contracts": contracts.strip(),
        "commands": commands_markdown(),
    }


def render(text: str) -> str:
    for name, body in sections().items():
        pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.DOTALL)
        text = pattern.sub(lambda m, body=body: f"{m.group(1)}{body}\n{m.group(2)}", text)
    return text


def main() -> int:
    current = README.read_text()
    fresh = render(current)
    if "--check" in sys.argv:
        return 0 if fresh == current else 1
    README.write_text(fresh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
