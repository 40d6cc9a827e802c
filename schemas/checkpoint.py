"""A named save point of a session's visible history; it records ranges, never copies entries."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from schemas.base import WireModel
from schemas.session import Segment


class Checkpoint(WireModel):
    id: str
    session_id: str
    name: str
    description: str | None = None
    message_count: int = Field(ge=0)
    created_at: datetime
    # The session's visible ranges at save time, closed at the then last sequence number.
    view: tuple[Segment, ...] = ()
    last_seq: int = 0
    # The key that sealed name and description, None for plaintext: the codec decides from this,
    # never from the texts. Records written before it existed lack it (see worker/engine/sealing.py).
    sealed_with: str | None = None
