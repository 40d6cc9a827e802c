"""A stored summary of a range of older transcript entries (the `summarize` context strategy)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from schemas.base import WireModel


class Summary(WireModel):
    id: str
    session_id: str
    from_seq: int = Field(ge=1)
    to_seq: int = Field(ge=1)
    content: str
    token_count: int = Field(default=0, ge=0)
    created_at: datetime
    # The key that sealed the content, None for plaintext (as on Checkpoint).
    sealed_with: str | None = None
