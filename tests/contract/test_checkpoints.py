"""Contract: checkpoints and cleanup on every store."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from tests.support.addresses import ADDR, Addr
from worker import CheckpointNotFound, InvalidArgument, SessionManager
from worker.engine.clock import ManualClock


async def _conversation(manager: SessionManager, count: int, addr: Addr = ADDR) -> str:
    session = await manager.get_or_create_session(**addr)
    for n in range(count):
        await manager.add_message(session.id, "user", f"m{n}")
    return session.id


async def test_save_list_restore_delete(manager: SessionManager) -> None:
    sid = await _conversation(manager, 3)
    checkpoint = await manager.save_checkpoint(sid, "Before major change", "Saving state before refactoring")
    assert checkpoint.message_count == 3 and checkpoint.id.startswith("cp_")
    await manager.add_message(sid, "user", "after 1")
    await manager.add_message(sid, "user", "after 2")
    listed = await manager.list_checkpoints(sid)
    assert [(c.id, c.name, c.message_count) for c in listed] == [(checkpoint.id, "Before major change", 3)]

    restored = await manager.restore_checkpoint(checkpoint.id)
    assert restored.message_count == 3
    assert [e.content for e in await manager.get_history(sid)] == ["m0", "m1", "m2"]
    exported = await manager.export(sid, format="jsonl")
    assert "after" not in exported
    await manager.add_message(sid, "user", "new branch")
    assert [e.content for e in await manager.get_history(sid)] == ["m0", "m1", "m2", "new branch"]
    assert (await manager.get_session(sid)).message_count == 4

    await manager.delete_checkpoint(checkpoint.id)
    assert await manager.list_checkpoints(sid) == []
    with pytest.raises(CheckpointNotFound):
        await manager.restore_checkpoint(checkpoint.id)


async def test_restore_after_clear_and_nested_restores(manager: SessionManager) -> None:
    sid = await _conversation(manager, 2)
    early = await manager.save_checkpoint(sid, "early")
    await manager.clear_history(sid)
    await manager.add_message(sid, "user", "after clear")
    late = await manager.save_checkpoint(sid, "late")
    await manager.restore_checkpoint(early.id)
    await manager.add_message(sid, "user", "branch")
    assert [e.content for e in await manager.get_history(sid)] == ["m0", "m1", "branch"]
    await manager.restore_checkpoint(late.id)
    assert [e.content for e in await manager.get_history(sid)] == ["after clear"]
    assert (await manager.get_session(sid)).message_count == 1


async def test_foreign_checkpoint_is_not_found(manager: SessionManager) -> None:
    mine = await _conversation(manager, 1)
    theirs = await _conversation(manager, 1, {"user_id": "mallory", "channel_id": "telegram"})
    foreign = await manager.save_checkpoint(theirs, "secret")
    for action in (manager.restore_checkpoint, manager.delete_checkpoint):
        with pytest.raises(CheckpointNotFound, match=f"no checkpoint {foreign.id}"):
            await action(foreign.id, session_id=mine)
    assert [c.id for c in await manager.list_checkpoints(theirs)] == [foreign.id]
    with pytest.raises(CheckpointNotFound, match="no checkpoint cp_nope"):
        await manager.restore_checkpoint("cp_nope", session_id=mine)


async def test_restoring_a_checkpoint_of_an_archived_session_reactivates_it(manager: SessionManager) -> None:
    old = await _conversation(manager, 2)
    checkpoint = await manager.save_checkpoint(old, "keep")
    await manager.add_message(old, "user", "later")
    new = await manager.reset(user_id="user-123", channel_id="telegram")
    listed = await manager.list_checkpoints(new.id, whole_slot=True)
    assert [c.id for c in listed] == [checkpoint.id]
    restored = await manager.restore_checkpoint(checkpoint.id, session_id=new.id)
    assert restored.id == old and restored.status == "active"
    assert (await manager.get_or_create_session(**ADDR)).id == old
    assert [e.content for e in await manager.get_history(old)] == ["m0", "m1"]


async def test_checkpoint_names_are_validated(manager: SessionManager) -> None:
    sid = await _conversation(manager, 1)
    with pytest.raises(InvalidArgument, match="needs a name"):
        await manager.save_checkpoint(sid, "   ")
    with pytest.raises(InvalidArgument, match="limited to"):
        await manager.save_checkpoint(sid, "n" * 500)


async def test_cleanup_with_and_without_keeping_checkpoints(manager: SessionManager, clock: ManualClock) -> None:
    old_plain = await _conversation(manager, 2, {"user_id": "a", "channel_id": "slack"})
    old_saved = await _conversation(manager, 2, {"user_id": "b", "channel_id": "slack"})
    await manager.save_checkpoint(old_saved, "keep me")
    await manager.add_message(old_saved, "user", "after the checkpoint")
    clock.advance(timedelta(days=40))
    fresh = await _conversation(manager, 1, {"user_id": "c", "channel_id": "slack"})

    untouched = await manager.cleanup(older_than="30d")  # active sessions only when asked for
    assert (untouched.sessions, untouched.entries, untouched.kept_with_checkpoints) == (0, 0, 0)

    preview = await manager.cleanup(older_than="30d", include_active=True, dry_run=True)
    assert (await manager.get_session(old_plain)).message_count == 2
    report = await manager.cleanup(older_than="30d", include_active=True, keep_checkpoints=True)
    # The dry run counted exactly what the real run deleted: old_plain whole, old_saved's later entry.
    assert (preview.sessions, preview.entries, preview.kept_with_checkpoints, preview.dry_run) == (1, 3, 1, True)
    assert (report.sessions, report.entries, report.checkpoints, report.kept_with_checkpoints) == (1, 3, 0, 1)
    assert {s.id for s in (await manager.list_sessions()).items} == {old_saved, fresh}
    restored = await manager.restore_checkpoint((await manager.list_checkpoints(old_saved))[0].id)
    assert [e.content for e in await manager.get_history(restored.id)] == ["m0", "m1"]

    clock.advance(timedelta(days=40))
    preview = await manager.cleanup(older_than="30d", include_active=True, keep_checkpoints=False, dry_run=True)
    report = await manager.cleanup(older_than="30d", include_active=True, keep_checkpoints=False)
    assert (report.sessions, report.entries, report.checkpoints) == (
        preview.sessions,
        preview.entries,
        preview.checkpoints,
    )
    assert (report.sessions, report.checkpoints) == (2, 1)
    assert not (await manager.list_sessions()).items
    with pytest.raises(InvalidArgument, match="invalid duration"):
        await manager.cleanup(older_than="soon")


async def test_export_json_of_a_restored_session_hides_later_entries(manager: SessionManager) -> None:
    sid = await _conversation(manager, 2)
    checkpoint = await manager.save_checkpoint(sid, "two")
    await manager.add_message(sid, "assistant", "hidden later")
    await manager.restore_checkpoint(checkpoint.id)
    doc = json.loads(await manager.export(sid, format="json"))
    assert [m["content"] for m in doc["messages"]] == ["m0", "m1"]
