"""The least-privilege broker users of ops/rabbitmq/definitions.json, on a private node that loads
them at boot (with passwords rendered by ops/scripts/broker-definitions.py): every role does its
job, and a gateway cannot forge an accepted control event, read replies, or declare or delete the
project's queues and exchanges.

The inbound exchange is x-modulus-hash, where RabbitMQ checks no topic permissions and the
control event's type is in the body: what the broker does stop is a forged `user-id`, and the
worker dead-letters a control event without the scheduler's as `unauthorized`.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractConnection
from aiormq.exceptions import AMQPError

from schemas.events import AgentMessage, RetentionDue
from schemas.topology import Topology
from tests.support.backends import WorkerStore
from tests.support.broker import BrokerHarness
from tests.support.rabbit_nodes import RabbitNode, private_nodes
from worker.amqp.connection import connect_once
from worker.amqp.gateway import GatewayClient
from worker.amqp.publisher import json_message
from worker.amqp.topology import declare_topology_if_allowed
from worker.engine.tokens import TiktokenCounter

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.timeout(240)]
ROOT = Path(__file__).resolve().parents[2]
ROLES = ("admin", "worker", "scheduler", "gateway", "agent", "dispatcher")
NAMES = Topology(prefix="sessions", shards=2)  # the definitions' permissions name the default prefix
Action = Callable[[AbstractChannel], Awaitable[object]]


@pytest.fixture(scope="module")
def passwords() -> dict[str, str]:
    return {role: secrets.token_urlsafe(12) for role in ROLES}


@pytest.fixture(scope="module")
def node(passwords: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitNode]:
    env = {**os.environ, **{f"SESSIONS_BROKER_PASSWORD_{role.upper()}": pw for role, pw in passwords.items()}}
    rendered = subprocess.run(
        [sys.executable, str(ROOT / "ops/scripts/broker-definitions.py")], env=env, capture_output=True, check=True
    ).stdout
    path = tmp_path_factory.mktemp("definitions") / "definitions.json"
    path.write_bytes(rendered)
    with private_nodes(1, config=f"load_definitions = {path}\n") as nodes:
        yield nodes[0]


@pytest.fixture
def url(node: RabbitNode, passwords: dict[str, str]) -> Callable[[str], str]:
    return lambda role: node.url_as(f"sessions-{role}", passwords[role])


@asynccontextmanager
async def connected(url: str) -> AsyncIterator[AbstractConnection]:
    connection = await connect_once(url)
    async with connection:
        yield connection


async def refused(connection: AbstractConnection, action: Action) -> str:
    """What the broker said refusing `action` (on a channel of its own: a refusal closes it)."""
    channel = await connection.channel()
    with pytest.raises(AMQPError) as refusal:
        await action(channel)
    return str(refusal.value)


def shard(channel: AbstractChannel) -> Awaitable[object]:
    return channel.declare_queue(NAMES.shard_queue(0), durable=True, arguments={"x-queue-type": "quorum"})


async def get_one(channel: AbstractChannel, queue: str) -> object:
    return await (await channel.get_queue(queue, ensure=True)).get(fail=False)


def test_the_shipped_definitions_name_every_role() -> None:
    definitions = json.loads((ROOT / "ops/rabbitmq/definitions.json").read_text())
    assert {user["name"] for user in definitions["users"]} == {f"sessions-{role}" for role in ROLES}
    assert {p["user"] for p in definitions["permissions"]} == {f"sessions-{role}" for role in ROLES}
    assert not any("impersonator" in user["tags"] for user in definitions["users"])  # it could forge user-id
    assert "guest" not in {user["name"] for user in definitions["users"]}


async def test_a_gateway_cannot_forge_control_events_read_replies_or_touch_queues(
    node: RabbitNode, url: Callable[[str], str], tmp_path: Path, token_counter: TiktokenCounter
) -> None:
    harness = await BrokerHarness(url("admin"), NAMES, WorkerStore.sqlite_in(tmp_path), token_counter).open()
    try:
        await harness.start_worker(
            AMQP_URL=url("worker"),
            scheduler_user="sessions-scheduler",
            retention_max_age="1s",
            retention_keep_minimum=0,
        )
        async with connected(url("gateway")) as gateway_connection, connected(url("scheduler")) as scheduler_connection:
            gateway = await GatewayClient.open(gateway_connection, NAMES)
            sent = await gateway.send_message(channel="telegram", peer_id="42", text="hello")  # its job works
            [turn] = await harness.turns.wait_for(sent.event_id)
            victim = str(turn["sessionId"])
            key = (await harness.manager.get_session(victim)).key

            # Without a user-id (or with its own): the worker dead-letters it as unauthorized.
            await gateway.publish(RetentionDue(event_id="forged-1", session_id=victim, rule="max_age"), key)
            # Claiming the scheduler's user-id: the broker refuses the publish itself.
            claiming = await GatewayClient.open(gateway_connection, NAMES, user_id="sessions-scheduler")
            with pytest.raises(AMQPError, match="user_id property set to 'sessions-scheduler'"):
                await claiming.publish(RetentionDue(event_id="forged-2", session_id=victim, rule="max_age"), key)
            await harness.dead.wait_count(1)
            assert [item["eventId"] for item in harness.dead.items] == ["forged-1"]
            assert (await harness.manager.get_session(victim)).status == "active"

            assert "ACCESS_REFUSED" in await refused(
                gateway_connection, lambda ch: get_one(ch, NAMES.reply_outbox_queue)
            )
            for action in (
                shard,
                lambda ch: ch.queue_delete(NAMES.shard_queue(0)),
                lambda ch: ch.queue_delete(NAMES.dead_letter_queue),
                lambda ch: ch.exchange_delete(NAMES.inbound_exchange),
                lambda ch: ch.declare_queue("sessions.dispatch.mine", durable=True),
                lambda ch: ch.declare_exchange(NAMES.reply_exchange, aio_pika.ExchangeType.TOPIC, durable=True),
            ):
                assert "ACCESS_REFUSED" in await refused(gateway_connection, action)
            assert "ACCESS_REFUSED" in await refused(gateway_connection, lambda ch: get_one(ch, NAMES.shard_queue(0)))

            # The scheduler's own event, carrying its validated user-id, is applied (once the
            # session is past max_age: the worker re-checks that too). Published under another
            # key, it is forwarded to the slot's first, as the worker's own validated user.
            await asyncio.sleep(1.2)
            scheduler = await GatewayClient.open(scheduler_connection, NAMES, user_id="sessions-scheduler")
            await scheduler.publish(RetentionDue(event_id="scheduled", session_id=victim, rule="max_age"), "elsewhere")
            [notice] = await harness.notices.wait_for("scheduled")
            assert notice["kind"] == "retention-deleted"
            assert len(harness.dead.items) == 1
    finally:
        await harness.close()


async def test_the_other_roles_do_their_jobs_and_no_more(
    node: RabbitNode, url: Callable[[str], str], tmp_path: Path, token_counter: TiktokenCounter
) -> None:
    harness = await BrokerHarness(url("admin"), NAMES, WorkerStore.sqlite_in(tmp_path), token_counter).open()
    try:
        await harness.start_worker(AMQP_URL=url("worker"), scheduler_user="sessions-scheduler")
        assert harness.gateway is not None
        async with (
            connected(url("agent")) as agent,
            connected(url("dispatcher")) as dispatcher,
            connected(url("scheduler")) as scheduler,
        ):
            # An agent runtime consumes turns from a queue of its own and answers them.
            channel = await agent.channel()
            turns = await channel.declare_queue("sessions.agent.main", durable=True)
            await turns.bind(NAMES.turn_exchange, routing_key="main")
            sent = await harness.gateway.send_message(channel="telegram", peer_id="7", text="question")
            [turn] = await harness.turns.wait_for(sent.event_id)
            answer = AgentMessage(
                event_id="answer-1",
                session_id=turn["sessionId"],
                role="assistant",
                content="42",
                in_reply_to=sent.event_id,
            )
            inbound = await channel.get_exchange(NAMES.inbound_exchange, ensure=True)
            await inbound.publish(json_message(answer), routing_key=turn["orderingKey"])
            [reply] = await harness.replies.wait_for(sent.event_id, count=1)
            assert reply["text"] == "42"
            assert "ACCESS_REFUSED" in await refused(agent, lambda ch: get_one(ch, NAMES.reply_outbox_queue))
            assert "ACCESS_REFUSED" in await refused(agent, lambda ch: ch.queue_delete(NAMES.shard_queue(1)))

            # A dispatcher reads the replies, and publishes nothing inbound.
            assert await get_one(await dispatcher.channel(), NAMES.reply_outbox_queue) is not None
            await GatewayClient.open(dispatcher, NAMES)  # a passive check needs no permission...
            assert "ACCESS_REFUSED" in await refused(  # ...the publish is what is refused
                dispatcher, lambda ch: _publish_inbound(ch, answer, turn["orderingKey"])
            )

            # The scheduler may not declare the topology (it goes on without) nor read anything.
            await declare_topology_if_allowed(scheduler, NAMES, delivery_limit=20)
            assert "ACCESS_REFUSED" in await refused(scheduler, lambda ch: get_one(ch, NAMES.dead_letter_queue))
            assert "ACCESS_REFUSED" in await refused(scheduler, shard)
    finally:
        await harness.close()


async def _publish_inbound(channel: AbstractChannel, event: AgentMessage, key: str) -> None:
    exchange = await channel.get_exchange(NAMES.inbound_exchange, ensure=True)
    await exchange.publish(json_message(event), routing_key=key)
