"""Queries answered over AMQP request/reply: history, context window, export, list, show.

A client publishes a QueryRequest to the query queue with `reply_to` and `correlation_id` set;
one worker answers with a QueryResponse to `reply_to`, carrying the same `correlation_id`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from schemas.base import WireModel
from schemas.events import SafeId
from schemas.session import SessionStatus
from schemas.settings import ContextStrategy

QueryKind = Literal["history", "context", "export", "list", "show"]
QueryFormat = Literal["messages", "markdown", "text", "json", "jsonl"]

MAX_QUERY_LIMIT = 500
QUERY_FORMATS: dict[str, tuple[str, ...]] = {
    "history": ("messages", "markdown", "text"),
    "export": ("markdown", "json", "jsonl"),
}
NEEDS_SESSION = ("history", "context", "export", "show")


class QueryRequest(WireModel):
    """What to read. Fields a query does not use must be left out (they would be ignored silently)."""

    version: Literal[1] = 1
    query: QueryKind
    session_id: SafeId | None = Field(default=None, description="history, context, export, show")
    agent_id: SafeId | None = Field(default=None, description="list: only this agent's sessions")
    limit: int | None = Field(default=None, ge=1, le=MAX_QUERY_LIMIT, description="history (50), list (50)")
    format: QueryFormat | None = Field(
        default=None, description="history: messages|markdown|text; export: markdown|json|jsonl"
    )
    max_tokens: int | None = Field(default=None, ge=1, description="context; default: the agent's setting")
    strategy: ContextStrategy | None = Field(default=None, description="context; default: the agent's setting")
    status: SessionStatus | None = Field(default=None, description="list")
    active_within_minutes: int | None = Field(default=None, ge=1, description="list")
    cursor: str | None = Field(default=None, max_length=1000, description="list: nextCursor of the previous page")
    include_metadata: bool = Field(default=False, description="export")

    @model_validator(mode="after")
    def _check_fields(self) -> QueryRequest:
        if self.query in NEEDS_SESSION and self.session_id is None:
            raise ValueError(f"a {self.query} query needs sessionId")
        allowed = QUERY_FORMATS.get(self.query, ())
        if self.format is not None and self.format not in allowed:
            choices = f"use {', '.join(allowed)}" if allowed else "it takes no format"
            raise ValueError(f"format {self.format!r} does not apply to a {self.query} query: {choices}")
        return self


class QueryResponse(WireModel):
    """ok with a result, or not ok with an error meant for a person and a stable code for programs."""

    version: Literal[1] = 1
    ok: bool
    result: Any = None
    error: str | None = None
    code: str | None = None
