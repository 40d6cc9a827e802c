"""A whole conversation through the real broker: every chat command and agent replies, with routes."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest

from schemas.outbound import TurnEvent
from tests.support.backends import BACKENDS
from tests.support.broker import BrokerHarness

pytestmark = [pytest.mark.broker, pytest.mark.parametrize("worker_store", BACKENDS, indirect=True)]
_ids = itertools.count()


class Chat:
    def __init__(self, harness: BrokerHarness, channel: str, peer: str, user: str, thread: str | None = None) -> None:
        self.harness = harness
        self.channel, self.peer, self.user, self.thread = channel, peer, user, thread

    async def send(self, text: str) -> tuple[str, str]:
        assert self.harness.gateway is not None
        message_id = f"m{next(_ids)}"
        event = await self.harness.gateway.send_message(
            channel=self.channel,
            peer_id=self.peer,
            user_id=self.user,
            text=text,
            thread_id=self.thread,
            message_id=message_id,
        )
        return event.event_id, message_id

    def check_route(self, reply: dict[str, Any], message_id: str) -> None:
        delivery = reply["delivery"]
        assert delivery["channel"] == self.channel
        assert delivery["to"] == self.peer
        assert delivery.get("threadId") == self.thread
        assert delivery["replyToId"] == message_id

    async def command(self, text: str, kind: str = "command-result") -> str:
        event_id, message_id = await self.send(text)
        # A scope change also tells the chats whose sessions it archived (notices, elsewhere).
        [reply] = [r for r in await self.harness.replies.wait_for(event_id) if r["kind"] != "notice"]
        self.check_route(reply, message_id)
        assert reply["kind"] == kind, reply
        return str(reply["text"])

    async def say(self, text: str) -> TurnEvent:
        event_id, _ = await self.send(text)
        [turn] = await self.harness.turns.wait_for(event_id)
        return TurnEvent.model_validate(turn)


async def test_every_command_and_agent_reply(harness: BrokerHarness) -> None:
    await harness.start_worker()
    assert harness.gateway is not None
    telegram = Chat(harness, "telegram", "100", "u1", thread="t1")
    discord = Chat(harness, "discord", "chan-9", "u1")

    first = await telegram.say("Hello!")
    assert first.delivery.thread_id == "t1" and first.seq == 1
    second = await discord.say("hi from discord")
    # Answer the Telegram message after Discord spoke: it still goes back to Telegram's thread.
    answer = await harness.gateway.answer_turn(
        first, "Hi! How can I help?", usage={"inputTokens": 9, "outputTokens": 7}
    )
    [reply] = await harness.replies.wait_for(first.in_reply_to)
    assert reply["kind"] == "assistant" and reply["text"] == "Hi! How can I help?"
    assert reply["eventId"] != answer.event_id
    telegram.check_route(reply, first.delivery.reply_to_id or "")
    await harness.gateway.answer_turn(second, "Hello Discord")
    [reply] = await harness.replies.wait_for(second.in_reply_to)
    assert reply["delivery"]["channel"] == "discord" and "threadId" not in reply["delivery"]

    assert "/checkpoint save" in await telegram.command("/help")
    info = await telegram.command("/session")
    assert f"Session {first.session_id}" in info and "Messages: 2" in info
    saved = await telegram.command('/checkpoint save "before refactor" Saving state before refactoring')
    checkpoint_id = re.search(r"cp_[0-9a-f]+", saved).group(0)  # type: ignore[union-attr]
    assert "(2 messages)" in saved
    assert checkpoint_id in await telegram.command("/checkpoint list")
    await telegram.say("later message")
    assert "later message" in await telegram.command("/history")
    restored = await telegram.command(f"/checkpoint restore {checkpoint_id}")
    assert "2 messages" in restored
    history = await telegram.command("/history 5")
    assert "Hello!" in history and "later message" not in history
    assert "# Session" in await telegram.command("/history export")
    assert "deleted" in await telegram.command(f"/checkpoint delete {checkpoint_id}")
    assert f"no checkpoint {checkpoint_id}" in await telegram.command(
        f"/checkpoint restore {checkpoint_id}", kind="error"
    )
    assert "History cleared" in await telegram.command("/history clear")
    assert await telegram.command("/history") == "No messages yet."
    assert "Your sessions" in await telegram.command("/session list")

    new = await telegram.command("/new")
    assert new.startswith("New session started") and f"go back to the previous session ({first.session_id})" in new
    assert "Session reset" in await telegram.command("/reset")
    assert first.session_id in await telegram.command("/session list")

    # Bad input gets a helpful reply, never silence.
    assert "unknown command /bogus" in await telegram.command("/bogus", kind="error")
    assert "usage: /checkpoint save" in await telegram.command("/checkpoint save", kind="error")
    assert "Only the agent's admins" in await telegram.command("/session scope peer", kind="error")

    admin = Chat(harness, "telegram", "admin", "admin")
    assert "per-peer" in await admin.command("/session scope peer")
    assert "04:00 Europe/Berlin" in await admin.command("/session reset-time 04:00 Europe/Berlin")
    assert "30 idle minutes" in await admin.command("/session idle-reset 30")
    assert "not a number" in await admin.command("/session idle-reset soon", kind="error")
    assert "unknown time zone" in await admin.command("/session reset-time 04:00 Mars/Base", kind="error")

    # Per-peer scope: Telegram and Discord now share u1's session (events are forwarded to its slot).
    tg_turn = await telegram.say("one")
    dc_turn = await discord.say("two")
    assert tg_turn.session_id == dc_turn.session_id
    assert dc_turn.delivery.channel == "discord" and tg_turn.delivery.channel == "telegram"
    assert harness.workers[0].handler is not None and harness.workers[0].handler.stats.forwarded >= 2
