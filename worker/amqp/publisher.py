"""Publishing with publisher confirms: outcomes, forwards and dead-letters."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

import aiormq
from aio_pika import DeliveryMode, Message
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from aiormq import spec
from aiormq.exceptions import ChannelInvalidStateError

from schemas import WireModel
from schemas.topology import (
    HEADER_DEAD_DETAIL,
    HEADER_DEAD_REASON,
    HEADER_FORWARDED,
    HEADER_ORIGINAL_KEY,
    HEADER_REDACTED,
    Topology,
    reply_routing_key,
)
from worker.engine.outcome import Outcome

PUBLISH_TIMEOUT = 10.0


def _wire(event: WireModel) -> tuple[bytes, str | None, str | None]:
    """The event's JSON body, message id and type: what every published event carries."""
    body = event.model_dump_json(by_alias=True, exclude_none=True).encode()
    return body, str(getattr(event, "event_id", "")) or None, str(getattr(event, "type", "")) or None


def json_message(
    event: WireModel, headers: Mapping[str, str | int] | None = None, *, user_id: str | None = None
) -> Message:
    """An aio-pika Message of the event, for publishers outside the worker's hot path; `user_id`
    (the connection's own user, or the broker refuses it) lets consumers trust the sender."""
    body, message_id, event_type = _wire(event)
    return Message(
        body,
        content_type="application/json",
        delivery_mode=DeliveryMode.PERSISTENT,
        message_id=message_id,
        type=event_type,
        headers=dict(headers or {}),
        user_id=user_id,
    )


@dataclass(frozen=True, slots=True)
class Outbound:
    """What the worker publishes: a body and its AMQP properties, built straight from the event.

    The same frames aio-pika's Message would produce, without its per-message bookkeeping
    (every outcome of every event passes through here).
    """

    body: bytes
    properties: spec.Basic.Properties


def outbound(event: WireModel) -> Outbound:
    body, message_id, event_type = _wire(event)
    return Outbound(
        body,
        spec.Basic.Properties(
            content_type="application/json",
            delivery_mode=DeliveryMode.PERSISTENT,
            message_id=message_id,
            message_type=event_type,
            headers={},
        ),
    )


def _copy(
    message: AbstractIncomingMessage,
    extra: dict[str, str | int],
    user_id: str | None = None,
    body: bytes | None = None,
) -> Outbound:
    """The same event, persistent, with its original routing key and `extra` added to the headers,
    published as `user_id` (validated by the broker) when given."""
    headers = {**(message.headers or {}), **extra, HEADER_ORIGINAL_KEY: message.routing_key or ""}
    return Outbound(
        message.body if body is None else body,
        spec.Basic.Properties(
            content_type=message.content_type,
            delivery_mode=DeliveryMode.PERSISTENT,
            message_id=message.message_id,
            message_type=message.type,
            headers=headers,
            user_id=user_id,
        ),
    )


class Publisher:
    """Every publish here returns only after the broker confirmed it."""

    def __init__(self, channel: AbstractChannel, names: Topology, *, user_id: str | None = None) -> None:
        self._channel = channel
        self._names = names
        self._user_id = user_id  # the connection's broker user: forwards carry it as their user-id
        self._exchanges: set[str] = set()

    async def open(self) -> Publisher:
        for name in self._names.exchanges():
            await self._channel.get_exchange(name, ensure=True)  # fails if the topology lacks it
            self._exchanges.add(name)
        return self

    async def publish(self, exchange: str, routing_key: str, message: Outbound) -> None:
        """What aio-pika's Exchange.publish does, on the same channel. The broker's confirm is the
        answer, so the socket write is not awaited separately (`wait=False`). A publish caught by
        a lost connection could wait forever for its confirm: bounded, the timeout is a transient
        failure that the handler retries (as is a nack, raised as DeliveryError)."""
        if exchange not in self._exchanges:
            raise KeyError(f"exchange {exchange!r} is not one of this worker's (open() checks them)")
        if self._channel.is_closed:
            raise ChannelInvalidStateError(f"{self._channel!r} closed")
        # aio-pika's channels sit on aiormq.Channel, whose basic_publish takes `wait` (the abstract type lacks it).
        channel = cast(aiormq.Channel, await self._channel.get_underlay_channel())
        await channel.basic_publish(
            message.body,
            exchange=exchange,
            routing_key=routing_key,
            properties=message.properties,
            timeout=PUBLISH_TIMEOUT,
            wait=False,
        )

    async def publish_outcome(self, outcome: Outcome) -> None:
        names = self._names
        sends = [
            *(
                self.publish(names.reply_exchange, reply_routing_key(r.delivery.channel, r.kind), outbound(r))
                for r in outcome.replies
            ),
            *(self.publish(names.turn_exchange, t.agent_id, outbound(t)) for t in outcome.turns),
            *(self.publish(names.notice_exchange, f"{n.kind}.{n.agent_id}", outbound(n)) for n in outcome.notices),
            *(self.publish(names.summarize_exchange, s.agent_id, outbound(s)) for s in outcome.summarize),
        ]
        if len(sends) == 1:
            await sends[0]  # the usual single turn or reply: no gather, no extra task
        else:
            await asyncio.gather(*sends)

    async def forward(self, message: AbstractIncomingMessage, routing_key: str, hops: int) -> None:
        """Re-publish an event under its slot's key so it is applied on the slot's shard."""
        copy = _copy(message, {HEADER_FORWARDED: hops}, self._user_id)
        await self.publish(self._names.inbound_exchange, routing_key, copy)

    async def dead_letter(
        self,
        message: AbstractIncomingMessage,
        reason: str,
        detail: str,
        *,
        body: bytes | None = None,
        redacted: tuple[str, ...] = (),
    ) -> None:
        """Publish the rejected event with its reason; `body`, when given, replaces its body
        (the secrets redacted), and HEADER_REDACTED names the kinds that were."""
        headers: dict[str, str | int] = {HEADER_DEAD_REASON: reason, HEADER_DEAD_DETAIL: detail[:1000]}
        if redacted:
            headers[HEADER_REDACTED] = ",".join(sorted(set(redacted)))
        copy = _copy(message, headers, body=body)
        await self.publish(self._names.dead_letter_exchange, reason, copy)
