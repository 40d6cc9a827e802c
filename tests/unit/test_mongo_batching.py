"""The MongoDB store takes the batched write path: concurrent appends share round trips."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support.mongomock_async import AsyncMongomockClient
from worker import create_session_manager
from worker.stores.mongo import MongoStore
from worker.tokens import CharRatioCounter


async def test_concurrent_appends_go_in_shared_batches_each_with_its_own_answer() -> None:
    store = MongoStore(AsyncMongomockClient(), "batching")
    manager = create_session_manager(store=store, token_counter=CharRatioCounter())
    await manager.open()
    sessions = [
        await manager.get_or_create_session(user_id=f"u{i}", channel_id="slack", peer_id=f"u{i}") for i in range(40)
    ]
    await manager.add_message(sessions[0].id, "user", "first", event_id="e-first")
    calls = {"insert_many": 0, "bulk_write": 0}
    for collection, method in ((store._entries, "insert_many"), (store._sessions, "bulk_write")):
        original = getattr(collection, method)

        async def counted(*args: Any, _original: Any = original, _method: str = method, **kwargs: Any) -> Any:
            calls[_method] += 1
            return await _original(*args, **kwargs)

        setattr(collection, method, counted)
    appends = [manager.add_message(s.id, "user", f"hello {i}", event_id=f"e{i}") for i, s in enumerate(sessions)]
    duplicate = manager.add_message(sessions[0].id, "user", "first", event_id="e-first")
    written = await asyncio.gather(*appends, duplicate)
    assert calls["insert_many"] < 10 and calls["bulk_write"] < 10, calls  # 41 appends, a few batches
    assert [entry.seq for entry in written[:40]] == [2] + [1] * 39
    assert written[40].seq == 1 and written[40].content == "first"  # the duplicate: the stored entry
    for i, session in enumerate(sessions):
        history = await manager.get_history(session.id)
        expected = ["first", "hello 0"] if i == 0 else [f"hello {i}"]
        assert [entry.content for entry in history] == expected
        assert (await manager.get_session(session.id)).message_count == len(expected)
    await manager.close()
