"""The outbound events applying one event produces to tell a chat something: replies and notices.

Their ids derive from the event's scoped key, so a replay yields the very same events.
"""

from __future__ import annotations

from typing import Protocol

from schemas import DeliveryContext
from schemas.events import ChatSource
from schemas.outbound import NoticeEvent, NoticeKind, ReplyEvent, ReplyKind
from worker.engine.clock import Clock
from worker.engine.idempotency import Identity
from worker.engine.outcome import Outcome, derived_id
from worker.engine.scope import ChatAddress


def address_of(agent_id: str, source: ChatSource) -> ChatAddress:
    return ChatAddress(
        agent_id=agent_id,
        channel=source.channel,
        user_id=source.user_id,
        peer_id=source.peer_id,
        account_id=source.account_id,
        thread_id=source.thread_id,
        message_id=source.message_id,
        chat_type=source.chat_type,
    )


class Told(Protocol):
    """What a notice names: a session (a SessionEntry, or what is noted of a deleted one)."""

    @property
    def id(self) -> str: ...
    @property
    def agent_id(self) -> str: ...


class Announcer:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def reply(
        self, identity: Identity, agent_id: str, session_id: str | None, text: str, source: ChatSource, kind: ReplyKind
    ) -> Outcome:
        delivery = address_of(agent_id, source).delivery()
        reply = ReplyEvent(
            event_id=derived_id(identity.key, "reply"),
            in_reply_to=identity.event_id,
            kind=kind,
            agent_id=agent_id,
            session_id=session_id,
            text=text,
            delivery=delivery,
            occurred_at=self._clock(),
        )
        return Outcome(replies=(reply,))

    def notice(
        self,
        identity: Identity,
        session: Told,
        kind: NoticeKind,
        text: str,
        delivery: DeliveryContext | None,
        *,
        each: bool = False,  # one of several notices of this kind: ids per session
    ) -> Outcome:
        tag = f"{kind}:{session.id}" if each else kind
        notice = NoticeEvent(
            event_id=derived_id(identity.key, f"notice:{tag}"),
            in_reply_to=identity.event_id,
            kind=kind,
            agent_id=session.agent_id,
            session_id=session.id,
            text=text,
            delivery=delivery,
            occurred_at=self._clock(),
        )
        replies: tuple[ReplyEvent, ...] = ()
        if delivery is not None and delivery.channel:
            replies = (
                ReplyEvent(
                    event_id=derived_id(identity.key, f"reply:{tag}"),
                    in_reply_to=identity.event_id,
                    kind="notice",
                    agent_id=session.agent_id,
                    session_id=session.id,
                    text=text,
                    delivery=delivery,
                    occurred_at=self._clock(),
                ),
            )
        return Outcome(notices=(notice,), replies=replies)
