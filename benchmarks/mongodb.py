"""`sessions bench --store mongodb`: the worker case with its sessions in MongoDB.

What runs there: the throughput rounds (bare loop against the worker, whose store is a fresh
database on the given server, dropped afterwards), with the server's own request count over the
worker's drains; both sides' latency at the same rates as on SQLite, with the worker's stage
breakdown (benchmarks/stages.py); then the append path's round trips per message, counted on the
wire through the driver's command events while this process applies the worker case's events
through the engine (as many in flight as the worker holds), so that the batching shows: a batch of
appends is one insert of entries and one update of sessions. The SQLite-only phases (pre-filled
stores, growth, memory, the engine alone) do not run.

The report names the server from its buildInfo; figures from a test server (a wire-protocol
server that is not MongoDB) are labelled as such: they are not MongoDB's.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pymongo import AsyncMongoClient, MongoClient
from pymongo.monitoring import CommandFailedEvent, CommandListener, CommandStartedEvent, CommandSucceededEvent

from benchmarks.cases import KEY
from benchmarks.pipeline import apply_all, bodies, engine_handler
from worker import create_session_manager
from worker.engine.clock import system_clock
from worker.engine.crypto import EncryptingCodec, KeyRing
from worker.service.outcome_log import OutcomeLog
from worker.service.processor import EventProcessor
from worker.stores.mongo import MongoStore

Doc = dict[str, Any]
APPEND_COMMANDS = ("insert entries", "update sessions")


def _client(url: str) -> MongoClient[Doc]:
    return MongoClient(url, serverSelectionTimeoutMS=10_000)


def server(url: str) -> dict[str, Any]:
    """Which server the figures come from, and whether it is MongoDB itself."""
    with _client(url) as client:
        info: Doc = client.admin.command("buildInfo")
        hello: Doc = client.admin.command("hello")
    version = str(info.get("version", "?"))
    test_server = info.get("secantusVersion")
    topology = f"replica set {hello['setName']}" if hello.get("setName") else "standalone"
    if test_server is not None:
        described = f"SecantusDB {test_server}, a MongoDB wire-protocol test server (answers as {version}), {topology}"
    else:
        described = f"MongoDB {version}, {topology}"
    return {"mongodb_server": described, "mongodb_server_is_mongodb": test_server is None}


def server_requests(url: str) -> int:
    """The server's count of requests received (serverStatus network.numRequests), all clients'."""
    with _client(url) as client:
        status: Doc = client.admin.command("serverStatus")
    return int(status.get("network", {}).get("numRequests", 0))


def drop(url: str, database: str) -> None:
    with _client(url) as client:
        client.drop_database(database)


class SentCommands(CommandListener):
    """Commands sent, by name and collection: each one a round trip."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def started(self, event: CommandStartedEvent) -> None:
        self.counts[f"{event.command_name} {event.command.get(event.command_name)}"] += 1

    def succeeded(self, event: CommandSucceededEvent) -> None:
        return None

    def failed(self, event: CommandFailedEvent) -> None:
        return None


async def append_round_trips(url: str, database: str, *, events: int, slots: int, in_flight: int) -> dict[str, Any]:
    """Round trips per message while the engine applies `events` of the worker case's events,
    `in_flight` at once: the append path's (entries insert, sessions update), and all of them."""
    sent = SentCommands()
    client: AsyncMongoClient[Doc] = AsyncMongoClient(url, tz_aware=True, event_listeners=[sent])
    codec = EncryptingCodec(KeyRing.parse(f"bench:{KEY}"))
    manager = create_session_manager(store=MongoStore(client, database), codec=codec)
    try:
        async with manager:
            processor = EventProcessor(manager, system_clock)
            outcomes = OutcomeLog(manager.store, manager.transcript.codec, system_clock)
            handle = engine_handler(processor, outcomes)

            await apply_all(handle, bodies("warm", slots, slots), in_flight)  # every slot's session
            sent.counts.clear()
            await apply_all(handle, bodies("rtt", events, slots), in_flight)
    finally:
        drop(url, database)
    appends = sum(sent.counts[name] for name in APPEND_COMMANDS)
    return {
        "append_round_trips_per_msg": round(appends / events, 3),
        "store_round_trips_per_msg": round(sum(sent.counts.values()) / events, 3),
        "append_round_trips": {name: sent.counts[name] for name in APPEND_COMMANDS},
    }
