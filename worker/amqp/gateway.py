"""A small publisher for gateways and agent runtimes written in Python (and for `sessions send`)."""

from __future__ import annotations

import uuid
from typing import Any

from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange

from schemas.delivery import ChatType
from schemas.events import AgentMessage, ChatSource, EventBase, InboundMessage
from schemas.outbound import TurnEvent
from schemas.topology import Topology, routable
from worker.amqp.connection import connect
from worker.amqp.publisher import json_message
from worker.service.processor import ordering_key


class GatewayClient:
    """Publishes inbound events with the routing key that keeps each chat in order. With `user_id`
    (the connection's broker user) every event carries it as its validated `user-id`: the
    scheduler's control events are accepted only so."""

    def __init__(self, channel: AbstractChannel, exchange: AbstractExchange, *, user_id: str | None = None) -> None:
        self._channel = channel
        self._exchange = exchange
        self._user_id = user_id

    @classmethod
    async def open(
        cls, connection: AbstractConnection, names: Topology | None = None, *, user_id: str | None = None
    ) -> GatewayClient:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange((names or Topology()).inbound_exchange, ensure=True)
        return cls(channel, exchange, user_id=user_id)

    async def close(self) -> None:
        await self._channel.close()

    async def publish(self, event: EventBase, routing_key: str) -> None:
        """Publish any inbound event; returns once the broker has confirmed it."""
        message = json_message(event, user_id=self._user_id)
        await self._exchange.publish(message, routing_key=routable(routing_key))

    async def send_message(
        self,
        *,
        channel: str,
        peer_id: str,
        text: str,
        agent_id: str = "main",
        user_id: str | None = None,
        account_id: str | None = None,
        thread_id: str | None = None,
        message_id: str | None = None,
        chat_type: ChatType = "direct",
        event_id: str | None = None,
    ) -> InboundMessage:
        source = ChatSource(
            channel=channel,
            peer_id=peer_id,
            user_id=user_id,
            account_id=account_id,
            thread_id=thread_id,
            message_id=message_id,
            chat_type=chat_type,
        )
        event = InboundMessage(event_id=event_id or uuid.uuid4().hex, agent_id=agent_id, source=source, text=text)
        await self.publish(event, ordering_key(agent_id, source))
        return event

    async def answer_turn(
        self, turn: TurnEvent, text: str, *, event_id: str | None = None, **fields: Any
    ) -> AgentMessage:
        """For agent runtimes: store the assistant's answer and have it routed to the asking chat."""
        message = AgentMessage(
            event_id=event_id or uuid.uuid4().hex,
            agent_id=turn.agent_id,
            session_id=turn.session_id,
            role="assistant",
            content=text,
            in_reply_to=turn.in_reply_to,
            in_reply_to_seq=turn.seq,
            **fields,
        )
        await self.publish(message, turn.ordering_key)
        return message


async def connect_gateway(url: str, names: Topology | None = None) -> tuple[AbstractConnection, GatewayClient]:
    connection = await connect(url, wait=False)  # a client reports an unreachable broker at once
    try:
        return connection, await GatewayClient.open(connection, names)
    except BaseException:
        await connection.close()  # e.g. no inbound exchange: the topology is not declared
        raise
