"""Contract: sessions, scopes, resets and listing behave the same on every store."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from schemas import SessionEntry
from tests.conftest import MakeManager
from tests.support.addresses import ADDR
from worker import ChatAddress, InvalidArgument, InvalidScope, SessionManager
from worker.engine.clock import ManualClock
from worker.stores.base import SessionStore
from worker.stores.mongo import MongoStore
from worker.stores.sqlite import SqliteStore

ADDRESS = ChatAddress(channel="telegram", user_id="user-123", peer_id="peer-789")


async def test_get_or_create_returns_the_same_session(manager: SessionManager) -> None:
    first = await manager.get_or_create_session(**ADDR)
    again = await manager.get_or_create_session(**ADDR)
    assert first.id == again.id
    assert first.message_count == 0
    assert first.created_at == first.last_activity_at
    assert first.delivery_context is not None and first.delivery_context.channel == "telegram"


async def test_two_concurrent_creations_make_one_session(manager: SessionManager) -> None:
    sessions = await asyncio.gather(*(manager.get_or_create_session(**ADDR) for _ in range(2)))
    assert sessions[0].id == sessions[1].id
    page = await manager.list_sessions(agent_id="main")
    assert [s.id for s in page.items] == [sessions[0].id]


async def test_concurrent_creations_across_managers_make_one_session(make_manager: MakeManager) -> None:
    # Two managers on one store stand for two worker processes racing for a new slot.
    left, right = make_manager(), make_manager()
    sessions = await asyncio.gather(*(m.get_or_create_session(**ADDR) for m in (left, right) for _ in range(3)))
    assert len({s.id for s in sessions}) == 1


async def test_scopes_map_chats_to_slots(make_manager: MakeManager) -> None:
    per_channel = make_manager(scope="per-channel-peer")
    tg = await per_channel.get_or_create_session(user_id="u1", channel_id="telegram")
    dc = await per_channel.get_or_create_session(user_id="u1", channel_id="discord")
    other = await per_channel.get_or_create_session(user_id="u2", channel_id="telegram")
    assert len({tg.id, dc.id, other.id}) == 3

    await per_channel.set_scope("peer")
    tg_peer = await per_channel.get_or_create_session(user_id="u1", channel_id="telegram")
    dc_peer = await per_channel.get_or_create_session(user_id="u1", channel_id="discord")
    assert tg_peer.id == dc_peer.id and tg_peer.id not in {tg.id, dc.id}

    await per_channel.set_scope("main")
    everyone = {
        (await per_channel.get_or_create_session(user_id=u, channel_id=c)).id
        for u in ("u1", "u2")
        for c in ("telegram", "discord")
    }
    assert len(everyone) == 1
    assert (await per_channel.get_settings()).scope == "main"


async def test_groups_always_get_their_own_session(make_manager: MakeManager) -> None:
    manager = make_manager(scope="main")
    direct = await manager.get_or_create_session(user_id="u1", channel_id="discord")
    group_a = await manager.get_or_create_session(user_id="u1", channel_id="discord", peer_id="g1", chat_type="group")
    group_a2 = await manager.get_or_create_session(user_id="u2", channel_id="discord", peer_id="g1", chat_type="group")
    group_b = await manager.get_or_create_session(user_id="u1", channel_id="discord", peer_id="g2", chat_type="group")
    assert group_a.id == group_a2.id
    assert len({direct.id, group_a.id, group_b.id}) == 3


async def test_unknown_scope_is_a_typed_error(manager: SessionManager) -> None:
    with pytest.raises(InvalidScope, match="unknown scope 'galaxy'"):
        await manager.set_scope("galaxy")
    with pytest.raises(InvalidArgument, match="invalid session manager options"):
        from worker import create_session_manager

        create_session_manager(scope="galaxy")


async def test_reset_archives_and_starts_a_new_session(manager: SessionManager) -> None:
    old = await manager.get_or_create_session(**ADDR)
    await manager.add_message(old.id, "user", "hello")
    new = await manager.reset(user_id="user-123", channel_id="telegram")
    assert new.id != old.id and new.message_count == 0
    archived = await manager.get_session(old.id)
    assert archived.status == "archived" and archived.archived_reason == "reset"
    assert archived.archived_at is not None
    # Archived sessions stay readable and exportable.
    assert [e.content for e in await manager.get_history(old.id)] == ["hello"]
    assert "hello" in await manager.export(old.id, format="markdown")
    assert (await manager.get_or_create_session(**ADDR)).id == new.id


async def test_restore_session_reactivates_an_archived_one(manager: SessionManager) -> None:
    old = await manager.get_or_create_session(**ADDR)
    new = await manager.reset(user_id="user-123", channel_id="telegram")
    restored = await manager.restore_session(old.id)
    assert restored.status == "active"
    assert (await manager.get_session(new.id)).archived_reason == "superseded"
    assert (await manager.get_or_create_session(**ADDR)).id == old.id


async def test_lazy_idle_reset_on_next_activity(make_manager: MakeManager, clock: ManualClock) -> None:
    manager = make_manager(idle_reset_minutes=30)
    first = await manager.get_or_create_session(**ADDR)
    await manager.add_message(first.id, "user", "hi")
    clock.advance(timedelta(minutes=29))
    assert (await manager.get_or_create_session(**ADDR)).id == first.id
    clock.advance(timedelta(minutes=31))
    resolution = await manager.resolve(ADDRESS)
    assert resolution.session.id != first.id
    assert resolution.archived is not None and resolution.archived.id == first.id
    assert resolution.due is not None and resolution.due.reason == "idle"
    assert (await manager.get_session(first.id)).archived_reason == "idle"


async def test_lazy_daily_reset_at_the_configured_hour(make_manager: MakeManager, clock: ManualClock) -> None:
    manager = make_manager(daily_reset_hour=4, time_zone="Europe/Berlin")
    first = await manager.get_or_create_session(**ADDR)  # 2026-03-03 11:00 Berlin
    clock.advance(timedelta(hours=16))  # 03:00 Berlin next day: not yet
    assert (await manager.get_or_create_session(**ADDR)).id == first.id
    clock.advance(timedelta(hours=1, minutes=1))  # 04:01 Berlin
    second = await manager.get_or_create_session(**ADDR)
    assert second.id != first.id
    assert (await manager.get_session(first.id)).archived_reason == "daily"


async def test_reset_settings_are_validated(manager: SessionManager) -> None:
    from worker import InvalidResetTime, InvalidTimeZone

    with pytest.raises(InvalidResetTime, match="HH:MM"):
        await manager.set_reset_time("25:00")
    with pytest.raises(InvalidTimeZone, match="Mars/Olympus"):
        await manager.set_reset_time("04:00", time_zone="Mars/Olympus")
    settings = await manager.set_reset_time("04:30", time_zone="Asia/Tokyo")
    assert (settings.reset.mode, settings.reset.daily_at, settings.reset.time_zone) == ("daily", "04:30", "Asia/Tokyo")
    settings = await manager.set_idle_reset(30)
    assert (settings.reset.mode, settings.reset.idle_minutes) == ("daily+idle", 30)
    settings = await manager.set_idle_reset(0)
    assert settings.reset.mode == "daily"


async def test_list_sessions_pages_and_filters(manager: SessionManager, clock: ManualClock) -> None:
    ids = []
    for n in range(7):
        ids.append((await manager.get_or_create_session(user_id=f"u{n}", channel_id="slack")).id)
        clock.advance(timedelta(minutes=10))
    other = await manager.get_or_create_session(user_id="x", channel_id="slack", agent_id="helper")
    first = await manager.list_sessions(agent_id="main", limit=3)
    assert [s.id for s in first.items] == ids[::-1][:3] and first.next_cursor
    second = await manager.list_sessions(agent_id="main", limit=3, cursor=first.next_cursor)
    third = await manager.list_sessions(agent_id="main", limit=3, cursor=second.next_cursor)
    assert [s.id for s in second.items + third.items] == ids[::-1][3:]
    assert third.next_cursor is None
    recent = await manager.list_sessions(agent_id="main", active_within_minutes=25)
    assert [s.id for s in recent.items] == [ids[-1], ids[-2]]
    everyone = await manager.list_sessions(limit=100)
    assert other.id in {s.id for s in everyone.items} and len(everyone.items) == 8
    await manager.reset(user_id="u0", channel_id="slack")
    archived = await manager.list_sessions(status="archived")
    assert [s.id for s in archived.items] == [ids[0]]
    with pytest.raises(InvalidArgument, match="cursor"):
        await manager.list_sessions(cursor="not-a-cursor")


def _slot_session(generation: int, now: datetime) -> SessionEntry:
    return SessionEntry(
        id=f"s_dup{generation}",
        key="slot-dup",
        agent_id="main",
        generation=generation,
        created_at=now,
        updated_at=now,
        last_activity_at=now,
    )


async def _drop_one_active_index(store: SessionStore) -> None:
    """Make the store look like one built before the index existed."""
    if isinstance(store, SqliteStore):
        await store._db.write(lambda conn: conn.execute("DROP INDEX sessions_one_active"), alone=True)
    else:
        assert isinstance(store, MongoStore)
        await store._sessions.drop_index("one_active_per_slot")


async def test_a_slot_holds_one_active_session_and_older_duplicates_are_archived(
    store: SessionStore, clock: ManualClock
) -> None:
    now = clock()
    first, second, third = (_slot_session(generation, now) for generation in (1, 2, 3))
    assert await store.insert_session(first)
    assert not await store.insert_session(second)  # a racing creator's insert fails: it adopts `first`

    await _drop_one_active_index(store)
    assert await store.insert_session(second)  # what the race could leave before the index
    await store.ensure_schema()
    active = await store.find_active("main", "slot-dup")
    assert active is not None and active.id == second.id
    older = await store.get_session(first.id)
    assert older is not None and (older.status, older.archived_reason) == ("archived", "superseded")
    assert not await store.insert_session(third)
