"""What applying one event produced: the events to publish. Stored per event id for replays."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict

from schemas.outbound import NoticeEvent, ReplyEvent, SummarizeRequest, TurnEvent

_NAMESPACE = uuid.UUID("5b1f8a3e-9c52-4a57-8d8e-2f0c9e7d4a11")


def derived_id(event_id: str, purpose: str) -> str:
    """A stable id for something an event produces: the same event always yields the same id."""
    return uuid.uuid5(_NAMESPACE, f"{event_id}/{purpose}").hex


class Outcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    replies: tuple[ReplyEvent, ...] = ()
    turns: tuple[TurnEvent, ...] = ()
    notices: tuple[NoticeEvent, ...] = ()
    summarize: tuple[SummarizeRequest, ...] = ()

    def __add__(self, other: Outcome) -> Outcome:
        return Outcome(
            replies=self.replies + other.replies,
            turns=self.turns + other.turns,
            notices=self.notices + other.notices,
            summarize=self.summarize + other.summarize,
        )
