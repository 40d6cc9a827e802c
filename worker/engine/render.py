"""History and export formats: messages, markdown, text, json, jsonl (one line per entry)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from schemas import SessionEntry, TranscriptEntry

_TITLES = {"system": "System", "user": "User", "assistant": "Assistant", "tool": "Tool", "tool-result": "Tool result"}


def entry_text(entry: TranscriptEntry) -> str:
    """The readable body of an entry, whatever its role."""
    if entry.role == "tool":
        args = json.dumps(entry.args or {}, ensure_ascii=False, sort_keys=True)
        return f"{entry.tool}({args})"
    if entry.role == "tool-result":
        result = entry.result if isinstance(entry.result, str) else json.dumps(entry.result, ensure_ascii=False)
        return f"{entry.tool}: {result}" if entry.tool else result
    return entry.content or ""


def _stamp(entry: TranscriptEntry) -> str:
    return entry.timestamp.strftime("%Y-%m-%d %H:%M:%S UTC")


def as_text(entries: Iterable[TranscriptEntry]) -> str:
    return "\n".join(f"[{entry.role}] {entry_text(entry)}" for entry in entries)


def as_markdown(entries: Iterable[TranscriptEntry]) -> str:
    blocks = [f"**{_TITLES[entry.role]}** · {_stamp(entry)}\n\n{entry_text(entry)}" for entry in entries]
    return "\n\n---\n\n".join(blocks)


def _metadata_lines(session: SessionEntry) -> list[str]:
    fields: list[tuple[str, Any]] = [
        ("Session", session.id),
        ("Key", session.key),
        ("Agent", session.agent_id),
        ("Status", session.status),
        ("Created", session.created_at.isoformat()),
        ("Last activity", session.last_activity_at.isoformat()),
        ("Messages", session.message_count),
        ("Tokens", f"{session.input_tokens} in / {session.output_tokens} out"),
    ]
    if session.delivery_context is not None and session.delivery_context.channel:
        fields.append(("Channel", session.delivery_context.channel))
    return [f"- **{label}:** {value}" for label, value in fields]


def export_markdown(session: SessionEntry, entries: Iterable[TranscriptEntry], *, include_metadata: bool) -> str:
    parts = [f"# Session {session.id}"]
    if include_metadata:
        parts.append("\n".join(_metadata_lines(session)))
    body = as_markdown(entries)
    parts.append(body if body else "_No messages._")
    return "\n\n".join(parts) + "\n"


def export_json(session: SessionEntry, entries: Iterable[TranscriptEntry], *, include_metadata: bool) -> str:
    messages = [entry.export_line(include_metadata=include_metadata) for entry in entries]
    doc: dict[str, Any] = {"sessionId": session.id, "messages": messages}
    if include_metadata:
        doc["session"] = session.to_wire()
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def export_jsonl(entries: Iterable[TranscriptEntry], *, include_metadata: bool) -> str:
    lines = [
        json.dumps(entry.export_line(include_metadata=include_metadata), ensure_ascii=False, separators=(",", ":"))
        for entry in entries
    ]
    return "".join(line + "\n" for line in lines)
