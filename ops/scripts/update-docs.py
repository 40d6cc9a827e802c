"""Regenerate the README's settings and contracts sections and the JSON Schemas in schemas/json from the models.

.venv/bin/python ops/scripts/update-docs.py [--check]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from schemas.docgen import contracts_markdown, settings_markdown
from schemas.jsonschema import event_schemas
from schemas.jsonschema import render as render_schema
from worker.commands import commands_markdown
from worker.config import Settings

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SCHEMAS = ROOT / "schemas/json"


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


def schema_files() -> dict[str, str]:
    return {f"{name}.schema.json": render_schema(schema) for name, schema in event_schemas().items()}


def main() -> int:
    current = README.read_text()
    fresh = render(current)
    files = schema_files()
    if "--check" in sys.argv:
        committed = {path.name: path.read_text() for path in SCHEMAS.glob("*.json")}
        return 0 if fresh == current and committed == files else 1
    README.write_text(fresh)
    SCHEMAS.mkdir(exist_ok=True)
    for stale in {path.name for path in SCHEMAS.glob("*.json")} - set(files):
        (SCHEMAS / stale).unlink()
    for name, text in files.items():
        (SCHEMAS / name).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
