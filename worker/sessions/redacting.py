"""Redaction by agent: each agent's settings pick its redactor, applied to what is about to be stored.

The engine (worker/engine/redaction.py) knows detectors; this knows agents, drafts and command texts. A
redactor is built once per distinct set of an agent's own patterns and shared by the agents that
have the same set, so an event costs a settings lookup (cached) and the engine's pre-filter.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable
from typing import Any

from schemas import AgentSettings, RedactionPattern
from worker.engine.redaction import BUILT_IN, MARKER, Findings, Redactor, custom_detector
from worker.errors import SessionNotFound
from worker.sessions.transcript import Draft, Transcript
from worker.stores.base import EntryRecords

SettingsLookup = Callable[[str], Awaitable[AgentSettings]]
RedactionCounter = Callable[[str], None]
_MAX_REDACTORS = 256


def notice_text(findings: Findings) -> str:
    """What the chat is told, once per session, the first time one of its messages is redacted."""
    kinds = ", ".join(sorted(set(findings.kinds)))
    return (
        f"Something in this chat looked like a secret ({kinds}) and was replaced by [redacted:<kind>] before"
        " it was stored; the original is kept nowhere. If it was a real key, token or card, revoke it."
        " (Said once per session.)"
    )


class Redactions:
    def __init__(self, settings: SettingsLookup, store: EntryRecords, transcript: Transcript) -> None:
        self._settings = settings
        self._store = store
        self._transcript = transcript
        self._redactors: dict[tuple[RedactionPattern, ...], Redactor] = {(): Redactor(BUILT_IN)}

    async def redactor(self, agent_id: str) -> Redactor | None:
        """The agent's redactor, or None when its redaction is switched off."""
        policy = (await self._settings(agent_id)).redaction
        if not policy.enabled:
            return None
        found = self._redactors.get(policy.patterns)
        if found is None:
            if len(self._redactors) >= _MAX_REDACTORS:  # settings churn: start over, keep the built-ins
                self._redactors = {(): self._redactors[()]}
            extra = (custom_detector(pattern.kind, pattern.pattern) for pattern in policy.patterns)
            found = self._redactors[policy.patterns] = Redactor((*BUILT_IN, *extra))
        return found

    async def text(self, agent_id: str, text: str, findings: Findings) -> str:
        redactor = await self.redactor(agent_id)
        return text if redactor is None else redactor.text(text, findings)

    async def optional(self, agent_id: str, text: str | None, findings: Findings) -> str | None:
        return None if text is None else await self.text(agent_id, text, findings)

    async def draft(self, agent_id: str, draft: Draft, findings: Findings) -> Draft:
        """The draft with its content, tool arguments and result redacted (all that is sealed)."""
        redactor = await self.redactor(agent_id)
        if redactor is None:
            return draft
        before = len(findings.kinds)
        content = None if draft.content is None else redactor.text(draft.content, findings)
        args = None if draft.args is None else redactor.value(draft.args, findings)
        result = None if draft.result is None else redactor.value(draft.result, findings)
        if len(findings.kinds) == before:
            return draft  # nothing found: the caller's own objects, not copies
        return dataclasses.replace(draft, content=content, args=args, result=result)

    async def session_draft(self, session_id: str, draft: Draft) -> Draft:
        """The draft redacted as the session's agent says (the session as appends see it: no read)."""
        session = await self._transcript.current_session(session_id)
        if session is None:
            raise SessionNotFound(f"no session {session_id}")
        return await self.draft(session.agent_id, draft, Findings())

    async def redacted_before(self, session_id: str, seq: int, *, page: int = 200) -> bool:
        """Whether an entry of the session before `seq` holds a redaction (so the chat was told then).

        Derived from the stored entries, which never change, so asking again for the same entry
        (a replay) gives the same answer. Read newest first, stopping at the latest redaction; it
        is only asked when a message was redacted, which is rare.
        """
        end = seq - 1
        while end >= 1:
            for stored in await self._store.read_entries(session_id, max(1, end - page + 1), end, page):
                entry = self._transcript.open(stored)
                if MARKER in (entry.content or "") or MARKER in json.dumps([entry.args, entry.result]):
                    return True
            end -= page
        return False


class RedactionStep:
    """The worker's part around redaction: redact, count each redaction once, decide the notice."""

    def __init__(self, redactions: Redactions, counter: RedactionCounter | None = None) -> None:
        self.redactions = redactions
        self._counter = counter

    async def text(self, agent_id: str, text: str, findings: Findings) -> str:
        return await self.redactions.text(agent_id, text, findings)

    async def counted(self, agent_id: str, *texts: str) -> tuple[str, ...]:
        """Texts that are applied once (commands, summaries: their replays come from the outcome
        record), redacted and counted at once."""
        findings = Findings()
        redacted = tuple([await self.redactions.text(agent_id, text, findings) for text in texts])
        self.count(findings)
        return redacted

    def count(self, findings: Findings, before: bool = False) -> None:
        """Count each redaction by kind (never its value), not again when the event's entry was
        stored before (a replay)."""
        if self._counter is not None and not before:
            for kind in findings.kinds:
                self._counter(kind)

    async def dead_letter_body(self, body: bytes) -> tuple[bytes, tuple[str, ...]]:
        """A rejected event's body as it may be kept, secrets redacted, and the kinds found (counted)."""
        findings = Findings()
        cleaned = await redacted_body(body, self.redactions, findings)
        self.count(findings)
        return cleaned, tuple(findings.kinds)

    async def notice(self, findings: Findings, session_id: str, seq: int) -> str | None:
        """The notice for the chat when entry `seq` is the session's first redacted one, else None."""
        if not findings or await self.redactions.redacted_before(session_id, seq):
            return None
        return notice_text(findings)


_DEFAULT_AGENT = "main"  # whose redaction applies when the body names no agent it can be read for


def _agent_of(doc: Any) -> str:
    agent = doc.get("agentId") if isinstance(doc, dict) else None
    return agent.strip() if isinstance(agent, str) and 0 < len(agent.strip()) <= 256 else _DEFAULT_AGENT


async def redacted_body(body: bytes, redactions: Redactions, findings: Findings) -> bytes:
    """A dead letter's body with its secrets replaced by [redacted:<kind>] (each kind added to
    `findings`), as storing the event would have: dead letters are kept for replay, so written too.
    A JSON body has every string redacted and is re-serialized; any other body is redacted as text;
    a body with nothing found is kept byte for byte."""
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
