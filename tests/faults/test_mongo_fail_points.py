"""MongoDB faults injected over the wire (`configureFailPoint` / `failCommand`) into the store's
inserts and updates: each retried with back-off until it lands, nothing acknowledged that was not
stored, no entry twice, the session's counters right afterwards.

The fail point matches this test's client only (its appName), so nothing else on the server is hit.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import OperationFailure
from pymongo.monitoring import CommandFailedEvent, CommandListener, CommandStartedEvent, CommandSucceededEvent

from schemas.events import ChatSource, CommandEvent, InboundMessage
from tests.support.fakes import Delivery, RecordingPublisher, delivery_of, handler_for
from worker import create_session_manager
from worker.amqp.consumer import EventHandler
from worker.engine.idempotency import bare_id
from worker.engine.tokens import CharRatioCounter
from worker.service.processor import ordering_key
from worker.sessions.manager import SessionManager
from worker.stores.mongo import MongoStore

pytestmark = [pytest.mark.realmongo, pytest.mark.slow]
SOURCE = ChatSource(channel="telegram", peer_id="7", user_id="7")
FAULTS: dict[str, dict[str, Any]] = {
    "network-error": {"closeConnection": True},
    "not-writable-primary": {"errorCode": 10107},
    "write-conflict": {"errorCode": 112},
    "max-time-expired": {"errorCode": 50},
    # The write is applied on the primary, then not replicated in time: acknowledged as not durable.
    "write-concern-timeout": {
        "writeConcernError": {
            "code": 64,
            "codeName": "WriteConcernFailed",
            "errmsg": "waiting for replication timed out",
            "errInfo": {"wtimeout": True},
        }
    },
    # Longer than the client's socket timeout (below): the driver gives up on a write that may land.
    "blocked-past-the-socket-timeout": {"blockConnection": True, "blockTimeMS": 1500},
}
# A write-concern error comes with the write applied on the primary: a retry finds it there (the
# idempotency read), so the event may be acknowledged while the fault lasts. Of every other fault,
# nothing is acknowledged until it is off.
APPLIED_ON_THE_PRIMARY = {"write-concern-timeout"}
SOCKET_TIMEOUT_MS = 700
FAULTY_FOR_SECONDS = 1.0


class FailedCommands(CommandListener):
    """Counts the commands that failed, by name: proof the fault was hit, and how often."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def started(self, event: CommandStartedEvent) -> None:
        return None

    def succeeded(self, event: CommandSucceededEvent) -> None:
        if "writeConcernError" in event.reply:  # an answer "ok", with the write not durable
            self.counts[event.command_name] += 1

    def failed(self, event: CommandFailedEvent) -> None:
        self.counts[event.command_name] += 1


@dataclass
class Rig:
    manager: SessionManager
    handler: EventHandler
    publisher: RecordingPublisher
    admin: AsyncMongoClient[dict[str, Any]]
    app_name: str
    database: str
    listener: FailedCommands

    async def arm(self, command: str, fault: dict[str, Any]) -> None:
        data = {"failCommands": [command], "appName": self.app_name, **fault}
        await self.admin.admin.command({"configureFailPoint": "failCommand", "mode": "alwaysOn", "data": data})

    async def disarm(self) -> None:
        await self.admin.admin.command({"configureFailPoint": "failCommand", "mode": "off"})

    async def stored_entries(self) -> list[dict[str, Any]]:
        return await self.admin[self.database]["entries"].find({}, {"event_id": 1, "seq": 1}).to_list(None)


def _with_options(url: str, **options: object) -> str:
    query = "&".join(f"{name}={value}" for name, value in options.items())
    return f"{url}{'&' if '?' in url else '?'}{query}"


@pytest.fixture
async def rig(mongodb_url: str, mongodb_database: str) -> AsyncIterator[Rig]:
    admin: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
    try:
        await admin.admin.command({"configureFailPoint": "failCommand", "mode": "off"})
    except OperationFailure as exc:
        await admin.close()
        pytest.fail(f"the MongoDB server does not accept configureFailPoint (start it with test commands): {exc}")
    app_name, database = f"faults-{uuid.uuid4().hex[:8]}", mongodb_database
    listener = FailedCommands()
    # A short heartbeat: after a not-writable-primary answer the driver waits for the next check
    # to find the primary again (10 s by default).
    url = _with_options(mongodb_url, appName=app_name, socketTimeoutMS=SOCKET_TIMEOUT_MS, heartbeatFrequencyMS=500)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url, tz_aware=True, event_listeners=[listener])
    manager = create_session_manager(store=MongoStore(client, database), token_counter=CharRatioCounter())
    await manager.open()
    publisher = RecordingPublisher()
    try:
        yield Rig(manager, handler_for(manager, publisher), publisher, admin, app_name, database, listener)
    finally:
        await admin.admin.command({"configureFailPoint": "failCommand", "mode": "off"})
        await manager.close()
        await admin.close()


def _message(event_id: str, text: str) -> Delivery:
    event = InboundMessage(event_id=event_id, source=SOURCE, text=text)
    return delivery_of(event.model_dump(mode="json", by_alias=True), ordering_key("main", SOURCE))


async def _handled_through_the_fault(rig: Rig, delivery: Delivery, command: str, fault: str) -> None:
    """Handle `delivery` while `command` fails; nothing may be acked until it is off, unless the
    fault leaves the write applied on the primary."""
    await rig.arm(command, FAULTS[fault])
    handling = asyncio.create_task(rig.handler.handle(cast(Any, delivery)))
    await asyncio.sleep(FAULTY_FOR_SECONDS)
    try:
        if fault not in APPLIED_ON_THE_PRIMARY:
            assert delivery.acks == 0, "acknowledged while the write could not land"
    finally:
        await rig.disarm()
    await asyncio.wait_for(handling, 30)
    # Hit, and (unless the retry found the write applied) hit again on the retries.
    assert rig.listener.counts[command] >= (1 if fault in APPLIED_ON_THE_PRIMARY else 2), rig.listener.counts


@pytest.mark.parametrize("command", ["insert", "update"])
@pytest.mark.parametrize("fault", FAULTS)
async def test_a_message_is_stored_once_through_the_fault(rig: Rig, command: str, fault: str) -> None:
    first = _message("m1", "hello")
    await _handled_through_the_fault(rig, first, command, fault)
    assert first.acks == 1 and not rig.publisher.dead
    [outcome] = rig.publisher.outcomes  # a turn is published once its entry is stored, not before
    [turn] = outcome.turns
    second = _message("m2", "again")
    await rig.handler.handle(cast(Any, second))
    assert second.acks == 1
    session = await rig.manager.get_session(turn.session_id)
    history = await rig.manager.get_history(session.id)
    assert [e.content for e in history] == ["hello", "again"] and [e.seq for e in history] == [1, 2]
    assert session.message_count == 2
    stored = await rig.stored_entries()
    assert sorted(bare_id(doc["event_id"]) for doc in stored) == ["m1", "m2"]  # no entry twice
    assert rig.publisher.outcomes[1].turns[0].session_id == turn.session_id


@pytest.mark.parametrize("command", ["insert", "update"])
@pytest.mark.parametrize("fault", FAULTS)
async def test_a_command_reply_is_recorded_once_through_the_fault(rig: Rig, command: str, fault: str) -> None:
    """A checkpoint save: a checkpoint insert, the outcome record's upsert, one reply."""
    await rig.handler.handle(cast(Any, _message("m1", "hello")))
    save = CommandEvent(event_id="c1", source=SOURCE, command='/checkpoint save "through faults"')
    delivery = delivery_of(save.model_dump(mode="json", by_alias=True), ordering_key("main", SOURCE))
    await _handled_through_the_fault(rig, delivery, command, fault)
    assert delivery.acks == 1 and not rig.publisher.dead
    # The reply is published while its record is written, and again if that write is retried (the
    # command re-applied: the same reply id and text, stamped anew): at least once, never another.
    published = [(r.event_id, r.text, r.session_id) for outcome in rig.publisher.outcomes[1:] for r in outcome.replies]
    assert published and set(published) == {published[0]}
    reply = rig.publisher.outcomes[1].replies[0]
    session = await rig.manager.get_session(str(reply.session_id))
    [checkpoint] = await rig.manager.list_checkpoints(session.id)
    assert checkpoint.name == "through faults" and checkpoint.message_count == 1
    assert session.message_count == 1
    assert await rig.admin[rig.database]["outcomes"].count_documents({}) == 1  # the reply, recorded once
