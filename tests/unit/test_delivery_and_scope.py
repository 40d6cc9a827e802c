from __future__ import annotations

import pytest

from schemas import DeliveryContext
from worker import ChatAddress, InvalidArgument
from worker.engine.delivery import merge_delivery, normalize_delivery
from worker.engine.scope import parse_scope, session_key


def test_normalize_trims_canonicalizes_and_drops_empty() -> None:
    raw = DeliveryContext(channel=" TG ", to=" 123 ", account_id="", thread_id="  ", reply_to_id="m1")
    assert normalize_delivery(raw) == DeliveryContext(channel="telegram", to="123", reply_to_id="m1")


def test_merge_newer_wins_field_by_field() -> None:
    old = DeliveryContext(channel="discord", to="123456789", account_id="default")
    new = DeliveryContext(channel="discord", thread_id="thread-abc-123")
    assert merge_delivery(old, new) == DeliveryContext(
        channel="discord", to="123456789", account_id="default", thread_id="thread-abc-123"
    )


def test_merge_never_crosses_channels() -> None:
    old = DeliveryContext(channel="discord", to="123", account_id="bot-a", thread_id="t1", reply_to_id="m1")
    new = DeliveryContext(channel="telegram", reply_to_id="m2")
    assert merge_delivery(old, new) == DeliveryContext(channel="telegram", reply_to_id="m2")


def test_merge_new_recipient_drops_old_thread() -> None:
    old = DeliveryContext(channel="slack", to="C1", account_id="a", thread_id="t1")
    assert merge_delivery(old, DeliveryContext(to="C2")) == DeliveryContext(channel="slack", to="C2", account_id="a")


def test_session_keys_per_scope() -> None:
    addr = ChatAddress(agent_id="main", channel="Telegram", user_id="u:1", peer_id="p1")
    assert session_key("main", addr) == "agent:main:main"
    assert session_key("per-peer", addr) == "agent:main:peer:u%3A1"
    assert session_key("per-channel-peer", addr) == "agent:main:telegram:peer:u%3A1"
    group = ChatAddress(channel="discord", user_id="u1", peer_id="g1", chat_type="group")
    assert session_key("main", group) == "agent:main:discord:group:g1"


def test_session_key_needs_enough_address() -> None:
    with pytest.raises(InvalidArgument, match="needs a user_id or peer_id"):
        session_key("per-peer", ChatAddress(channel="telegram"))
    with pytest.raises(InvalidArgument, match="needs a channel_id"):
        session_key("per-channel-peer", ChatAddress(user_id="u1"))


def test_scope_aliases() -> None:
    assert [parse_scope(a) for a in ("main", "peer", "channel", "PER-PEER")] == [
        "main",
        "per-peer",
        "per-channel-peer",
        "per-peer",
    ]
