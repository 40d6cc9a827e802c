"""A dead letter's body with its secrets redacted, as storing the event would have redacted them.

Dead letters are kept for replay, so they are written too: the secret a rejected message carried
must not survive there. A JSON body has every string redacted (escapes and all) and is
re-serialized; any other body is redacted as text. A body with nothing found is kept byte for byte.
"""

from __future__ import annotations

import json
from typing import Any

from worker.engine.redaction import Findings
from worker.sessions.redacting import Redactions

_DEFAULT_AGENT = "main"  # whose redaction applies when the body names no agent it can be read for


def _agent_of(doc: Any) -> str:
    agent = doc.get("agentId") if isinstance(doc, dict) else None
    return agent.strip() if isinstance(agent, str) and 0 < len(agent.strip()) <= 256 else _DEFAULT_AGENT


async def redacted_body(body: bytes, redactions: Redactions, findings: Findings) -> bytes:
    """`body` with its secrets replaced by [redacted:<kind>] (each kind added to `findings`)."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        doc = None
    redactor = await redactions.redactor(_agent_of(doc))
    if redactor is None:  # the agent switched redaction off: its dead letters keep what it sent
        return body
    before = len(findings.kinds)
    if doc is not None:
        try:
            cleaned = redactor.value(doc, findings)
        except RecursionError:  # nested too deep to walk: redacted as text below
            cleaned, doc = None, None
        if doc is not None:
            if len(findings.kinds) == before:
                return body
            return json.dumps(cleaned, ensure_ascii=False, separators=(",", ":")).encode()
    # Not JSON (or not UTF-8): redact the text, keeping undecodable bytes as they were.
    text = body.decode("utf-8", errors="surrogateescape")
    cleaned_text = redactor.text(text, findings)
    return body if len(findings.kinds) == before else cleaned_text.encode("utf-8", errors="surrogateescape")
