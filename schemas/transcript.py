"""One transcript record per entry, ordered by a dense per-session sequence number."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from schemas.base import WireModel
from schemas.delivery import DeliveryContext
from schemas.limits import MAX_INT

Role = Literal["system", "user", "assistant", "tool", "tool-result"]
ROLES: tuple[Role, ...] = ("system", "user", "assistant", "tool", "tool-result")


class Usage(WireModel):
    input_tokens: int = Field(default=0, ge=0, le=MAX_INT)
    output_tokens: int = Field(default=0, ge=0, le=MAX_INT)


class TranscriptEntry(WireModel):
    session_id: str
    seq: int = Field(ge=1)
    event_id: str
    role: Role
    timestamp: datetime
    content: str | None = None
    tool: str | None = None
    args: dict[str, Any] | None = None
    result: Any = None
    usage: Usage | None = None
    token_count: int = Field(default=0, ge=0)
    important: bool = False
    delivery: DeliveryContext | None = None

    def export_line(self, *, include_metadata: bool = False) -> dict[str, Any]:
        """The entry as a JSONL export line: role plus the fields that role carries, then the timestamp."""
        line: dict[str, Any] = {"role": self.role}
        if self.role == "tool":
            line["tool"] = self.tool
            line["args"] = self.args if self.args is not None else {}
        elif self.role == "tool-result":
            line["result"] = self.result
        else:
            line["content"] = self.content
        line["timestamp"] = self.timestamp.strftime("%Y-%m-%dT%H:%M:%SZ")
        if include_metadata:
            line["seq"] = self.seq
            line["tokenCount"] = self.token_count
            if self.role == "tool-result" and self.tool is not None:
                line["tool"] = self.tool
            if self.usage is not None:
                line["usage"] = self.usage.to_wire()
            if self.important:
                line["important"] = True
        return line
