"""A steady stream of chat messages through the gateway, and an audit of what the workers made of
it: events lost, applied twice or out of order, counted per slot from the store itself."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from schemas.events import ChatSource, InboundMessage
from tests.support.broker import BrokerHarness
from worker import create_session_manager
from worker.amqp.gateway import GatewayClient
from worker.engine.tokens import TokenCounter
from worker.service.processor import ordering_key

PUBLISH_ATTEMPT_SECONDS = 10.0
PUBLISH_GIVE_UP_SECONDS = 120.0


@dataclass(frozen=True)
class StreamLoad:
    """`slots` chats, each sending `rounds` messages, one round every `pace` seconds."""

    slots: int
    rounds: int
    pace: float

    @property
    def total(self) -> int:
        return self.slots * self.rounds

    @staticmethod
    def source(slot: int) -> ChatSource:
        return ChatSource(channel="slack", peer_id=f"p{slot}", user_id=f"p{slot}")

    @staticmethod
    def event_id(slot: int, round_: int) -> str:
        return f"e-{slot}-{round_}"

    @staticmethod
    def text(slot: int, round_: int) -> str:
        return f"slot {slot} message {round_}"

    def routing_keys(self) -> list[str]:
        return [ordering_key("main", self.source(slot)) for slot in range(self.slots)]

    def event_ids(self) -> set[str]:
        return {self.event_id(slot, r) for slot in range(self.slots) for r in range(self.rounds)}


@dataclass
class StreamStats:
    published: int = 0
    resent: int = 0  # events the gateway had to publish more than once
    rounds: int = 0  # rounds confirmed so far
    _advanced: asyncio.Condition = field(default_factory=asyncio.Condition, repr=False)

    async def round_done(self) -> None:
        async with self._advanced:
            self.rounds += 1
            self._advanced.notify_all()

    async def wait_rounds(self, count: int, within: float = 60) -> None:
        async with asyncio.timeout(within), self._advanced:
            await self._advanced.wait_for(lambda: self.rounds >= count)


async def publish_stream(harness: BrokerHarness, load: StreamLoad, stats: StreamStats) -> None:
    """Each round waits for the previous one to be confirmed, so every slot's events reach the
    broker in order even when some of them had to be sent again."""
    assert harness.gateway is not None
    gateway = harness.gateway
    for round_ in range(load.rounds):
        await asyncio.gather(*(_publish_round_event(gateway, load, slot, round_, stats) for slot in range(load.slots)))
        await stats.round_done()
        await asyncio.sleep(load.pace)


async def _publish_round_event(
    gateway: GatewayClient, load: StreamLoad, slot: int, round_: int, stats: StreamStats
) -> None:
    source = load.source(slot)
    event = InboundMessage(event_id=load.event_id(slot, round_), source=source, text=load.text(slot, round_))
    await publish_confirmed(gateway, event, ordering_key("main", source), stats)


async def publish_confirmed(gateway: GatewayClient, event: InboundMessage, key: str, stats: StreamStats) -> None:
    """Publish until the broker confirms, as a gateway must: a publish cut off by a lost broker is
    sent again (if the first copy did arrive, the workers recognise the duplicate)."""
    give_up = time.monotonic() + PUBLISH_GIVE_UP_SECONDS
    for attempt in itertools.count():
        try:
            async with asyncio.timeout(PUBLISH_ATTEMPT_SECONDS):
                await gateway.publish(event, key)
        except Exception:  # a lost connection shows as AMQP, connection, state or timeout errors
            if time.monotonic() > give_up:
                raise
            await asyncio.sleep(0.2)
        else:
            stats.published += 1
            stats.resent += attempt > 0
            return


async def wait_answered(harness: BrokerHarness, load: StreamLoad, within: float) -> None:
    """Until every event has its turn event, or `within` seconds pass (the audit then says what is
    missing)."""
    expected = load.event_ids()
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if expected <= {turn.get("inReplyTo") for turn in harness.turns.items}:
            return
        await asyncio.sleep(0.2)


@dataclass
class Audit:
    lost: int = 0  # events whose message is missing from its slot's transcript
    doubled: int = 0  # extra copies of a message in a transcript
    reordered_slots: list[int] = field(default_factory=list)  # not in publish order (or seq gaps)
    unanswered: int = 0  # events without a turn event
    changed_ids: int = 0  # events whose re-published turn came with a different id
    republished: int = 0  # turn events seen again with the same id (allowed: same id, same effect)
    dead_lettered: int = 0  # nothing in this stream is bad input

    @property
    def reordered(self) -> int:
        return len(self.reordered_slots)

    @property
    def clean(self) -> bool:
        """Nothing lost, doubled, reordered or dead-lettered; every event answered with stable ids."""
        return not any((self.lost, self.doubled, self.reordered, self.unanswered, self.changed_ids, self.dead_lettered))

    def summary(self, label: str, load: StreamLoad, workers: int, faults: str, stats: StreamStats) -> str:
        return (
            f"[{label}] load {load.slots} slots x {load.rounds} rounds = {load.total} events, {workers} workers; "
            f"faults: {faults}; lost={self.lost} doubled={self.doubled} reordered={self.reordered} "
            f"unanswered={self.unanswered} changed-reply-ids={self.changed_ids} dead-lettered={self.dead_lettered}; "
            f"re-published turns={self.republished}, events the gateway re-sent={stats.resent}"
        )


async def audit(harness: BrokerHarness, load: StreamLoad, counter: TokenCounter) -> Audit:
    found = Audit()
    _audit_turns(harness, load, found)
    async with create_session_manager(token_counter=counter, **harness.store.options()) as manager:
        for slot in range(load.slots):
            source = load.source(slot)
            session = await manager.get_or_create_session(
                user_id=source.user_id, channel_id=source.channel, peer_id=source.peer_id
            )
            history = await manager.get_history(session.id, limit=load.rounds * 3)
            contents = [str(entry.content) for entry in history]
            in_order = _audit_transcript(contents, [load.text(slot, r) for r in range(load.rounds)], found)
            dense = [entry.seq for entry in history] == list(range(1, len(history) + 1))
            if not (in_order and dense and session.message_count == len(history)):
                found.reordered_slots.append(slot)
    return found


def _audit_transcript(contents: list[str], expected: list[str], found: Audit) -> bool:
    """Counts what is lost or doubled; says whether what is there is in publish order."""
    copies = Counter(contents)
    found.lost += sum(1 for text in expected if text not in copies)
    found.doubled += sum(count - 1 for count in copies.values())
    first_seen = list(dict.fromkeys(contents))
    return first_seen == [text for text in expected if text in copies]


def _audit_turns(harness: BrokerHarness, load: StreamLoad, found: Audit) -> None:
    ids_per_event: dict[str, set[str]] = defaultdict(set)
    for turn in harness.turns.items:
        ids_per_event[str(turn.get("inReplyTo"))].add(str(turn.get("eventId")))
    found.unanswered = len(load.event_ids() - set(ids_per_event))
    found.changed_ids = sum(1 for ids in ids_per_event.values() if len(ids) > 1)
    found.republished = len(harness.turns.items) - sum(len(ids) for ids in ids_per_event.values())
    found.dead_lettered = len(harness.dead.items)
