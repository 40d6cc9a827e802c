"""What applying one event produced: the events to publish (recorded for replays by OutcomeLog)."""

from __future__ import annotations

import hashlib
import uuid

from pydantic import BaseModel, ConfigDict, Field

from schemas.outbound import NoticeEvent, ReplyEvent, SummarizeRequest, TurnEvent

_NAMESPACE_BYTES = uuid.UUID("5b1f8a3e-9c52-4a57-8d8e-2f0c9e7d4a11").bytes
# RFC 4122 name-based SHA-1 (version 5): set the variant and version bits in the digest.
_CLEAR_VERSION = ~(0xC000 << 48) & ~(0xF000 << 64)
_VERSION_5 = (0x8000 << 48) | (5 << 76)


def derived_id(event_id: str, purpose: str) -> str:
    """A stable id for something an event produces: the same event always yields the same id.

    It is uuid5(_NAMESPACE, "<event_id>/<purpose>").hex, computed without building UUID objects.
    """
    digest = int.from_bytes(
        hashlib.sha1(_NAMESPACE_BYTES + f"{event_id}/{purpose}".encode(), usedforsecurity=False).digest()[:16]
    )
    return f"{digest & _CLEAR_VERSION | _VERSION_5:032x}"


class Outcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    replies: tuple[ReplyEvent, ...] = ()
    turns: tuple[TurnEvent, ...] = ()
    notices: tuple[NoticeEvent, ...] = ()
    summarize: tuple[SummarizeRequest, ...] = ()
    # The event's entry was stored already: its recorded outcome, if any, is what to re-publish.
    applied_before: bool = Field(default=False, exclude=True)
    # The event held a secret (it was redacted): its record keeps only a blurred fingerprint.
    held_secret: bool = Field(default=False, exclude=True)

    @property
    def rebuilt_on_replay(self) -> bool:
        """Turns only: applying the event again finds its stored entry and yields these same turns.
        A turn that names a model is recorded: the session's model may change before a replay."""
        return not (self.replies or self.notices or self.summarize) and all(t.model is None for t in self.turns)

    def __add__(self, other: Outcome) -> Outcome:
        return Outcome(
            replies=self.replies + other.replies,
            turns=self.turns + other.turns,
            notices=self.notices + other.notices,
            summarize=self.summarize + other.summarize,
            applied_before=self.applied_before or other.applied_before,
            held_secret=self.held_secret or other.held_secret,
        )

    def holding_secret(self, held: bool) -> Outcome:
        return self.model_copy(update={"held_secret": True}) if held and not self.held_secret else self
