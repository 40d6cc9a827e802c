"""The MongoDB store takes the batched write path: concurrent appends share round trips, counted
on the wire (the driver's command events), each append still with its own answer."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.monitoring import CommandFailedEvent, CommandListener, CommandStartedEvent, CommandSucceededEvent

from worker import create_session_manager
from worker.engine.tokens import CharRatioCounter
from worker.stores.mongo import MongoStore

pytestmark = pytest.mark.realmongo


class SentCommands(CommandListener):
    """Counts the commands the client sends, by collection and name: one each is a round trip."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def started(self, event: CommandStartedEvent) -> None:
        collection = event.command.get(event.command_name)
        self.counts[f"{event.command_name} {collection}"] += 1

    def succeeded(self, event: CommandSucceededEvent) -> None:
        return None

    def failed(self, event: CommandFailedEvent) -> None:
        return None


async def test_concurrent_appends_go_in_shared_batches_each_with_its_own_answer(
    mongodb_url: str, mongodb_database: str
) -> None:
    sent = SentCommands()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url, tz_aware=True, event_listeners=[sent])
    manager = create_session_manager(store=MongoStore(client, mongodb_database), token_counter=CharRatioCounter())
    await manager.open()
    sessions = [
        await manager.get_or_create_session(user_id=f"u{i}", channel_id="slack", peer_id=f"u{i}") for i in range(40)
    ]
    await manager.add_message(sessions[0].id, "user", "first", event_id="e-first")
    sent.counts.clear()
    appends = [manager.add_message(s.id, "user", f"hello {i}", event_id=f"e{i}") for i, s in enumerate(sessions)]
    duplicate = manager.add_message(sessions[0].id, "user", "first", event_id="e-first")
    written = await asyncio.gather(*appends, duplicate)
    # 41 appends in a few batches: an insert of entries and an update of sessions each.
    assert sent.counts["insert entries"] < 10 and sent.counts["update sessions"] < 10, sent.counts
    assert [entry.seq for entry in written[:40]] == [2] + [1] * 39
    assert written[40].seq == 1 and written[40].content == "first"  # the duplicate: the stored entry
    for i, session in enumerate(sessions):
        history = await manager.get_history(session.id)
        expected = ["first", "hello 0"] if i == 0 else [f"hello {i}"]
        assert [entry.content for entry in history] == expected
        assert (await manager.get_session(session.id)).message_count == len(expected)
    await manager.close()
