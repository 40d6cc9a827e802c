"""Secrets redacted before they are written: through the library, through the worker's handler, and
checked where the product writes (the SQLite file with its WAL, published events, outcome records)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from schemas.events import ChatSource
from schemas.outbound import TurnEvent
from tests.support.fakes import Delivery, RecordingPublisher, deliver, handler_for
from tests.support.secret_corpus import SECRETS
from worker import create_session_manager
from worker.config import Settings
from worker.engine.clock import ManualClock
from worker.engine.idempotency import identify
from worker.engine.tokens import TiktokenCounter
from worker.errors import InvalidArgument
from worker.service.inbound import decode_body
from worker.service.processor import ordering_key
from worker.sessions.manager import SessionManager
from worker.sessions.options import ManagerOptions, options_from_settings

CARD = "4111 1111 1111 1111"
KEY = next(secret for kind, secret, _ in SECRETS if kind == "openai")
TOKEN = next(secret for kind, secret, _ in SECRETS if kind == "github")
PEM = next(secret for kind, secret, _ in SECRETS if kind == "private-key")


@pytest.fixture
async def sqlite_manager(
    tmp_path: Path, clock: ManualClock, token_counter: TiktokenCounter
) -> AsyncIterator[SessionManager]:
    """A manager on a SQLite file (plain, unencrypted: what is in the file is what was written)."""
    async with create_session_manager(
        db_path=str(tmp_path / "sessions.db"), clock=clock, token_counter=token_counter
    ) as manager:
        yield manager


def written_bytes(folder: Path) -> bytes:
    """Everything SQLite has on disk: the database file and its write-ahead log."""
    return b"".join(path.read_bytes() for path in sorted(folder.glob("sessions.db*")))


def assert_nowhere(secrets: list[str], *places: bytes) -> None:
    for secret in secrets:
        for fragment in (secret, *secret.splitlines()[1:-1]):  # a PEM block's body lines too
            assert all(fragment.encode() not in place for place in places), f"found {fragment[:12]}..."


async def test_add_message_stores_and_counts_the_redacted_text(
    sqlite_manager: SessionManager, token_counter: TiktokenCounter, tmp_path: Path
) -> None:
    session = await sqlite_manager.get_or_create_session(user_id="u1", channel_id="telegram")
    entry = await sqlite_manager.add_message(session.id, "user", f"my card {CARD} and key {KEY}")
    assert entry.content == "my card [redacted:card] and key [redacted:openai]"
    assert entry.token_count == token_counter.count(entry.content)
    tool = await sqlite_manager.add_message(
        session.id, "tool", tool="http", args={"auth": f"token {TOKEN}"}, result={"key": PEM}
    )
    assert tool.args == {"auth": "token [redacted:github]"} and tool.result == {"key": "[redacted:private-key]"}
    history = await sqlite_manager.get_history(session.id)
    assert history[0].content == entry.content and history[1].args == tool.args
    checkpoint = await sqlite_manager.save_checkpoint(session.id, f"before {KEY}", f"card {CARD}")
    assert (checkpoint.name, checkpoint.description) == ("before [redacted:openai]", "card [redacted:card]")
    await sqlite_manager.store.close()
    written = written_bytes(tmp_path)
    assert b"my card [redacted:card]" in written  # the file holds texts as written: their absence means something
    assert_nowhere([CARD, KEY, TOKEN, PEM], written)


async def test_redaction_is_switched_off_per_agent_and_extended_by_patterns(make_manager: Any) -> None:
    manager: SessionManager = make_manager(redaction={"patterns": [{"kind": "employee-id", "pattern": r"EMP-\d{6}"}]})
    async with manager:
        await manager.set_redaction(enabled=False, agent_id="raw")
        mine = await manager.get_or_create_session(user_id="u1", channel_id="cli")
        raw = await manager.get_or_create_session(user_id="u1", channel_id="cli", agent_id="raw")
        kept = await manager.add_message(raw.id, "user", f"EMP-123456 {CARD}")
        redacted = await manager.add_message(mine.id, "user", f"EMP-123456 {CARD}")
        await manager.set_redaction(patterns=[], agent_id="main")
        plain = await manager.add_message(mine.id, "user", f"EMP-123456 {CARD}")
    assert kept.content == f"EMP-123456 {CARD}"
    assert redacted.content == "[redacted:employee-id] [redacted:card]"
    assert plain.content == "EMP-123456 [redacted:card]"  # its own pattern gone, the built-ins stay


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [("(unclosed", "does not compile"), ("a*", "empty"), ("x" * 501, "at most 500")],
)
async def test_a_configured_pattern_must_be_a_bounded_regex_matching_something(
    make_manager: Any, pattern: str, problem: str
) -> None:
    with pytest.raises(InvalidArgument, match=problem):
        make_manager(redaction={"patterns": [{"kind": "mine", "pattern": pattern}]})


def _inbound(event_id: str, text: str, peer: str = "100") -> Delivery:
    source = {"channel": "telegram", "peerId": peer, "messageId": f"m-{event_id}"}
    event = {"type": "message.inbound", "eventId": event_id, "source": source, "text": text}
    key = ordering_key("main", ChatSource.model_validate(source))
    return Delivery(json.dumps(event).encode(), routing_key=key, message_id=event_id)


def _agent(event_id: str, turn: TurnEvent, **fields: Any) -> Delivery:
    """An agent runtime's message to the turn's session, on the turn's ordering key."""
    event = {"type": "message.agent", "eventId": event_id, "sessionId": turn.session_id, **fields}
    return Delivery(json.dumps(event).encode(), routing_key=turn.ordering_key, message_id=event_id)


def _redactions(handler: Any) -> dict[str, float]:
    samples = handler.metrics.registry.get_sample_value
    return {kind: samples("sessions_redactions_total", {"kind": kind}) or 0 for kind in ("card", "openai", "github")}


async def test_the_worker_redacts_before_storing_and_tells_the_chat_once(
    sqlite_manager: SessionManager, tmp_path: Path
) -> None:
    publisher = RecordingPublisher()
    handler = handler_for(sqlite_manager, publisher)
    await deliver(handler, _inbound("1", "hello"))
    await deliver(handler, _inbound("2", f"my card is {CARD}"))
    await deliver(handler, _inbound("2", f"my card is {CARD}"))  # a duplicate: replays
    await deliver(handler, _inbound("3", f"and my key {KEY}"))
    first, told, again, later = publisher.outcomes
    assert told.turns[0].text == "my card is [redacted:card]"
    [notice] = told.notices
    [reply] = told.replies
    assert notice.kind == "secrets-redacted" and reply.kind == "notice" and reply.delivery.to == "100"
    assert "(card)" in reply.text and "revoke" in reply.text
    assert again.model_dump_json() == told.model_dump_json()  # byte-identical on the duplicate
    assert later.turns[0].text == "and my key [redacted:openai]" and not later.notices and not later.replies
    assert not first.notices and not publisher.dead
    assert _redactions(handler) == {"card": 1, "openai": 1, "github": 0}  # the duplicate is not counted

    turn = told.turns[0]
    await deliver(handler, _agent("a1", turn, role="tool", tool="git", args={"token": TOKEN}, result=PEM))
    await deliver(handler, _agent("a2", turn, role="assistant", content=f"Your key {KEY} works", inReplyTo="3"))
    assert publisher.outcomes[-1].replies[0].text == "Your key [redacted:openai] works"
    await deliver(handler, _inbound("4", f'/checkpoint save "{KEY}" card {CARD}'))
    assert "[redacted:openai]" in publisher.outcomes[-1].replies[0].text
    assert _redactions(handler) == {"card": 2, "openai": 3, "github": 1}

    assert not publisher.dead and not publisher.forwarded
    entries = await sqlite_manager.get_history(turn.session_id)
    assert entries[-1].content == "Your key [redacted:openai] works" and entries[-2].args == {
        "token": "[redacted:github]"
    }
    [checkpoint] = await sqlite_manager.list_checkpoints(turn.session_id)
    assert checkpoint.name == "[redacted:openai]" and checkpoint.description == "card [redacted:card]"
    published = "".join(outcome.model_dump_json() for outcome in publisher.outcomes).encode()
    await sqlite_manager.store.close()
    assert_nowhere([CARD, KEY, TOKEN, PEM], written_bytes(tmp_path), published)


async def test_a_first_redaction_in_an_agent_message_tells_the_chat_too(sqlite_manager: SessionManager) -> None:
    publisher = RecordingPublisher()
    handler = handler_for(sqlite_manager, publisher)
    await deliver(handler, _inbound("1", "what is my token?"))
    turn = publisher.outcomes[0].turns[0]
    await deliver(handler, _agent("a1", turn, role="tool-result", tool="vault", result={"token": TOKEN}))
    [notice] = publisher.outcomes[-1].notices
    assert notice.kind == "secrets-redacted" and publisher.outcomes[-1].replies[0].delivery.to == "100"
    await deliver(handler, _inbound("2", f"it is {CARD}"))
    assert not publisher.outcomes[-1].notices  # told already in this session


def test_the_environment_sets_the_default_for_agents_without_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSIONS_REDACTION", "false")
    monkeypatch.setenv("SESSIONS_REDACTION_PATTERNS", '[{"kind": "employee-id", "pattern": "EMP-\\\\d{6}"}]')
    defaults = ManagerOptions(**options_from_settings(Settings())).agent_defaults().redaction
    assert not defaults.enabled and [(p.kind, p.pattern) for p in defaults.patterns] == [("employee-id", r"EMP-\d{6}")]
    monkeypatch.delenv("SESSIONS_REDACTION")
    monkeypatch.delenv("SESSIONS_REDACTION_PATTERNS")
    assert ManagerOptions(**options_from_settings(Settings())).agent_defaults().redaction.enabled  # on by default


def _raw_fingerprint(delivery: Delivery) -> str:
    return identify(decode_body(delivery.body, 1 << 20)).fingerprint


async def test_no_digest_of_a_secret_bearing_event_is_stored_whole(
    sqlite_manager: SessionManager, tmp_path: Path
) -> None:
    """The fingerprint of an event is a digest of its text: stored whole, it would confirm a guessed
    card number against the redacted text beside it. An event that held a secret keeps 16 bits of it."""
    publisher = RecordingPublisher()
    handler = handler_for(sqlite_manager, publisher)
    said = _inbound("1", f"my card is {CARD}")
    command = _inbound("2", f'/checkpoint save "card {CARD}"')
    plain = _inbound("3", "no secret here")
    for delivery in (said, command, plain):
        await deliver(handler, delivery)
    await deliver(handler, _inbound("1", f"my card is {CARD}"))  # a duplicate: replayed, not a conflict
    await deliver(handler, _inbound("2", f'/checkpoint save "card {CARD}"'))
    assert len(publisher.outcomes) == 5 and not publisher.dead
    await deliver(handler, _inbound("1", f"my card is {CARD.replace('1111 1111', '1111 1112')}"))
    assert [reason for reason, _ in publisher.dead] == ["event-id-conflict"], "another text is still told apart"

    await sqlite_manager.store.close()
    written = written_bytes(tmp_path)
    for held_secret in (said, command):
        whole = _raw_fingerprint(held_secret)
        assert whole.encode() not in written
        assert f"b:{whole[:4]}".encode() in written
    assert _raw_fingerprint(plain).encode() in written, "an event without a secret keeps its whole fingerprint"
