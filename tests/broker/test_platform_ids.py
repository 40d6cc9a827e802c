"""Real platform ids end to end through the broker: published as the platform sends them, stored,
and every reply routed back with the very same ids."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic.alias_generators import to_snake

from schemas.topology import reply_routing_key
from tests.support.backends import BACKENDS
from tests.support.broker import BrokerHarness
from tests.support.raw_gateway import RawGateway, dead_letters, raw_gateway
from tests.support.wire import agent_doc, inbound_doc, key_of, source_doc

pytestmark = pytest.mark.broker


@dataclass(frozen=True)
class Platform:
    """One chat as a platform names it: the event ids are the platform's own message ids."""

    channel: str
    peer: str
    user: str | None
    event_ids: tuple[str, str]
    thread: str | None = None
    account: str | None = None
    group: bool = False

    def source(self, message_id: str) -> dict[str, Any]:
        return source_doc(
            self.channel,
            self.peer,
            user=self.user,
            account=self.account,
            thread=self.thread,
            message_id=message_id,
            group=self.group,
        )

    def route(self, message_id: str) -> dict[str, str]:
        """The delivery a reply to `message_id` must carry, on the wire."""
        expected = {"channel": self.channel, "to": self.peer, "replyToId": message_id}
        if self.thread is not None:
            expected["threadId"] = self.thread
        if self.account is not None:
            expected["accountId"] = self.account
        return expected


PLATFORMS = {
    "telegram-group-topic": Platform(
        "telegram", "-1001234567890", "123456789", ("4711", "4712"), thread="77", account="@sessions_bot", group=True
    ),
    "telegram-username": Platform("telegram", "@durov_channel", "@durov", ("-5", "-6")),
    "discord-thread": Platform(
        "discord",
        "1098765432109876543",
        "80351110224678912",
        ("1187654321098765432", "1187654321098765433"),
        thread="1123456789012345678",
        account="1012345678901234567",
        group=True,
    ),
    "slack-thread": Platform(
        "slack",
        "C024BE91L",
        "U0G9QF9C6",
        ("1712345699.000200", "1712345701.000300"),
        thread="1712345678.123456",
        account="T024BE7LD",
        group=True,
    ),
    "whatsapp-number": Platform("whatsapp", "+4915112345678", "+4915112345678", ("3EB0C431C5F2A8B7D3E1", "3EB0C4")),
    "whatsapp-jid": Platform(
        "whatsapp",
        "4915112345678@s.whatsapp.net",
        "4915112345678@s.whatsapp.net",
        ("wamid.HBgLNDkxNTExMjM0NTY3OBUCABIYIDNF==", "wamid.HBgLNDkxNTExMjM0NTY3OBUCABIYIDNG=="),
        account="+4930901820",
    ),
    "signal-group": Platform(
        "signal", "Zm9v/YmFy+YmF6cXV4dG9vbG9uZw==", "+4915112345678", ("1712345678901", "1712345678902"), group=True
    ),
    "matrix-room": Platform(
        "matrix",
        "!OGEhHVWSdvArJzumhm:matrix.org",
        "@alice:matrix.org",
        ("$143273582443PhrSn:example.org", "$143273582443PhrSo:example.org"),
        thread="$thread-root:matrix.org",
        group=True,
    ),
    "email": Platform(
        "email",
        "alice.smith+tag@example.co.uk",
        "alice.smith+tag@example.co.uk",
        ("<CAF=abc.123@mail.gmail.com>", "<CAF=abc.124@mail.gmail.com>"),
        thread="<CAF=root.1@mail.gmail.com>",
    ),
    "operator-like": Platform("webchat", "$gt", "a.b", ("$where", '{"$ne": null}'), thread="$in", account="x.$y"),
    "unicode-and-separators": Platform("line", "Ünïcødé:チャット/1", "ユーザー 7", ("メッセージ#1", "a:b/c?d=e&f")),
    # Every id at its longest (256 characters), none ASCII: no key fits AMQP's 255 bytes uncut.
    "longest-ids": Platform(
        "ë" * 256, "ü" * 256, "ユ" * 256, ("メ" * 256, "ッ" * 256), thread="ス" * 256, account="ア" * 256
    ),
}


@pytest.fixture
async def worker_started(harness: BrokerHarness) -> None:
    """One in-process worker on the store the test is parametrized with."""
    await harness.start_worker()


@pytest.fixture
async def raw(harness: BrokerHarness) -> AsyncIterator[RawGateway]:
    async with raw_gateway(harness.url, harness.names) as gateway:
        yield gateway


def _subset(actual: dict[str, Any], expected: dict[str, str]) -> dict[str, Any]:
    return {key: actual.get(key) for key in expected}


@pytest.mark.parametrize("worker_store", BACKENDS, indirect=True)
@pytest.mark.parametrize("platform", PLATFORMS.values(), ids=PLATFORMS.keys())
async def test_platform_ids_are_stored_and_routed_back_unchanged(
    harness: BrokerHarness, worker_started: None, raw: RawGateway, platform: Platform
) -> None:
    said, asked = platform.event_ids
    message = inbound_doc(said, platform.source(said), f"hello from {platform.channel}")
    await raw.publish(message, key_of(message))
    [turn] = await harness.turns.wait_for(said)
    assert turn["delivery"] == platform.route(said), "the turn carries the chat's own ids"

    answer = agent_doc(f"answer-{said}"[:256], turn["sessionId"], "the agent's answer", in_reply_to=said)
    await raw.publish(answer, turn["orderingKey"])
    [reply] = await harness.replies.wait_for(said)
    assert reply["kind"] == "assistant" and reply["text"] == "the agent's answer"
    assert reply["delivery"] == platform.route(said), "the answer goes back where the message came from"

    command = inbound_doc(asked, platform.source(asked), "/history")
    await raw.publish(command, key_of(command))
    [listing] = await harness.replies.wait_for(asked)
    assert listing["kind"] == "command-result" and "hello from" in listing["text"]
    assert listing["delivery"] == platform.route(asked)
    kinds = ("assistant", "command-result")
    assert set(harness.replies.routing_keys) == {reply_routing_key(platform.channel, kind) for kind in kinds}

    manager = harness.manager
    session = await manager.get_session(turn["sessionId"])
    stored = session.delivery_context
    assert stored is not None and (stored.channel, stored.to) == (platform.channel, platform.peer)
    assert (stored.thread_id, stored.account_id) == (platform.thread, platform.account)
    assert session.origin is not None and session.origin.peer_id == platform.peer
    assert session.origin.user_id == platform.user
    entries = await manager.get_history(session.id, limit=10)
    assert [(e.role, e.content) for e in entries] == [
        ("user", f"hello from {platform.channel}"),
        ("assistant", "the agent's answer"),
    ]
    assert entries[0].delivery is not None and entries[0].delivery.reply_to_id == said
    assert harness.dead.items == []
    [worker] = harness.workers
    assert worker.handler is not None and worker.handler.stats.forwarded == 0, "a conforming key needs no forward"


CONTROL = {"schema"}
BAD_IDS = {
    "nul in peerId": ("peerId", "100\x00200", CONTROL),
    "newline in userId": ("userId", "alice\nbob", CONTROL),
    "tab in threadId": ("threadId", "t\t1", CONTROL),
    "DEL in messageId": ("messageId", "m\x7f1", CONTROL),
    "C1 control in accountId": ("accountId", "acc\x851", CONTROL),
    "escape in channel": ("channel", "tele\x1bgram", CONTROL),
    "257 characters": ("peerId", "p" * 257, {"schema", "too-long"}),
    "only spaces": ("peerId", "   ", {"missing-id"}),
}


@pytest.mark.parametrize("field,value,reasons", BAD_IDS.values(), ids=BAD_IDS.keys())
async def test_ids_with_control_characters_are_dead_lettered_with_a_clear_reason(
    harness: BrokerHarness, raw: RawGateway, field: str, value: str, reasons: set[str]
) -> None:
    await harness.start_worker()
    source = {**source_doc("telegram", "100", user="100", thread="t1", account="acc", message_id="m1"), field: value}
    bad = inbound_doc("bad-id", source, "hello")
    key = key_of(inbound_doc("x", source_doc("telegram", "100", user="100"), ""))
    await raw.publish(bad, key)
    good = inbound_doc("good-after", source_doc("telegram", "100", user="100"), "still answered")
    await raw.publish(good, key)
    await harness.turns.wait_for("good-after")
    await harness.dead.wait_count(1, timeout=10)
    assert harness.dead.routing_keys[0] in reasons, harness.dead.routing_keys
    [dead] = harness.dead.items
    assert dead.get("eventId") == "bad-id"
    assert [turn["inReplyTo"] for turn in harness.turns.items] == ["good-after"]
    [(reason, detail)] = await dead_letters(harness.url, harness.names)
    assert reason in reasons and (field in detail or to_snake(field) in detail), detail
    await asyncio.sleep(0.2)
    assert "bad-id" not in harness.replies.by_reply, "a chat whose source cannot be parsed gets no reply"


async def test_a_256_character_id_is_accepted_and_echoed(harness: BrokerHarness, raw: RawGateway) -> None:
    """Ids of the full 256 characters where they are not part of the routing key (AMQP caps a key at
    255 bytes, so a chat id that long could not be published with its key at all)."""
    await harness.start_worker()
    long_peer = "-100" + "9" * 196
    message = inbound_doc("e" * 256, source_doc("telegram", long_peer, message_id="m" * 256), "long ids")
    await raw.publish(message, key_of(message))
    [turn] = await harness.turns.wait_for("e" * 256)
    assert turn["delivery"] == {"channel": "telegram", "to": long_peer, "replyToId": "m" * 256}
