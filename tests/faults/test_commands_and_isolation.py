"""Commands fuzzed through the event processor, and isolation between peers under every scope."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.events import ChatSource, InboundMessage
from schemas.settings import Scope
from worker import create_session_manager
from worker.engine.tokens import CharRatioCounter
from worker.service.processor import EventProcessor
from worker.sessions.manager import SessionManager

COMMAND_WORDS = ["/new", "/reset", "/session", "/checkpoint", "/history", "/help", "/bogus", "/", "//", "/session@bot"]
ARGS = [
    "list",
    "save",
    "restore",
    "delete",
    "export",
    "clear",
    "scope",
    "reset-time",
    "idle-reset",
    "main",
    "peer",
    "channel",
    "25:99",
    "04:00",
    "Mars/Base",
    "-1",
    "99999999",
    '"unbalanced',
    "cp_0000000000",
    '{"$gt": ""}',
    "$where",
    "\u202e",
    "\x00",
]
commands = st.builds(
    lambda head, tail: " ".join([head, *tail]),
    st.sampled_from(COMMAND_WORDS),
    st.lists(st.sampled_from(ARGS) | st.text(max_size=12), max_size=4),
)


async def _processor(tmp: Path, scope: Scope = "per-channel-peer") -> tuple[SessionManager, EventProcessor]:
    manager = create_session_manager(
        db_path=str(tmp / "s.db"), scope=scope, token_counter=CharRatioCounter(), admins=("telegram:boss",)
    )
    await manager.open()
    return manager, EventProcessor(manager, manager._clock)


def _message(
    event_id: str, user: str, text: str, channel: str = "telegram", group: str | None = None
) -> InboundMessage:
    source = ChatSource(channel=channel, peer_id=group or user, user_id=user, chat_type="group" if group else "direct")
    return InboundMessage(event_id=event_id, source=source, text=text)


@settings(
    max_examples=300, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture], deadline=None
)
@given(text=commands)
async def test_any_command_text_gets_one_clear_reply(tmp_path: Path, text: str) -> None:
    manager, processor = await _processor(tmp_path)
    try:
        outcome = await processor.apply(_message(f"e{abs(hash(text))}", "user1", text))
        [reply] = outcome.replies
        assert reply.kind in ("command-result", "error") and reply.text.strip()
        assert reply.delivery.channel == "telegram" and reply.delivery.to == "user1"
    finally:
        await manager.close()


@pytest.mark.parametrize("scope", ["per-peer", "per-channel-peer"])
async def test_a_peer_cannot_reach_another_peers_sessions_or_checkpoints(tmp_path: Path, scope: Scope) -> None:
    manager, processor = await _processor(tmp_path, scope)
    try:
        await processor.apply(_message("a1", "alice", "my secret is 1234"))
        saved = await processor.apply(_message("a2", "alice", '/checkpoint save "alice private"'))
        alice_cp = re.search(r"cp_[0-9a-f]+", saved.replies[0].text).group(0)  # type: ignore[union-attr]
        alice_session = saved.replies[0].session_id
        await processor.apply(_message("m1", "mallory", "hello"))

        async def mallory(text: str, n: list[int] = [0]) -> str:  # noqa: B006 - a counter for event ids
            n[0] += 1
            return (await processor.apply(_message(f"mx{n[0]}", "mallory", text))).replies[0].text

        for attempt in (f"/checkpoint restore {alice_cp}", f"/checkpoint delete {alice_cp}"):
            assert f"no checkpoint {alice_cp}" in await mallory(attempt)
        for view in ("/history", "/history export", "/session list", "/checkpoint list", "/session"):
            text = await mallory(view)
            assert "1234" not in text and "alice private" not in text and str(alice_session) not in text
        assert "Only the agent's admins" in await mallory("/session scope main")
        assert (await manager.store.get_checkpoint(alice_cp)) is not None
        alice_history = await manager.get_history(str(alice_session))
        assert [e.content for e in alice_history] == ["my secret is 1234"]
    finally:
        await manager.close()


async def test_group_members_share_the_group_but_not_their_direct_chats(tmp_path: Path) -> None:
    manager, processor = await _processor(tmp_path, "per-peer")
    try:
        await processor.apply(_message("d1", "alice", "direct secret"))
        group = await processor.apply(_message("g1", "alice", "group hello", group="g-42"))
        seen = await processor.apply(_message("g2", "mallory", "/history", group="g-42"))
        assert "group hello" in seen.replies[0].text and "direct secret" not in seen.replies[0].text
        assert (
            group.turns[0].session_id != (await processor.apply(_message("d2", "alice", "again"))).turns[0].session_id
        )
    finally:
        await manager.close()
