"""The plan of the scoped-idempotency stress test and its audit.

2,000 events over 200 chats: 20% reuse another chat's eventId, 100 more are exact duplicates (50
redelivered by the broker, 50 re-published: 25 byte-exact, 25 re-serialized). Chats pair up on the
same peer id across two channels. The audit reads every published turn and reply (as raw bytes) and
every transcript, and counts what landed in the wrong chat, what is lost, doubled, or re-published
with other bytes.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aio_pika.abc import AbstractIncomingMessage

from tests.support.wire import command_doc, inbound_doc, key_of, reserialized, source_doc

CHATS = 200
ROUNDS = 10
PHASE_ONE_ROUNDS = 5  # rounds 0..4 before the workers stop for the redelivery set-up
# Per chat, in order: what each of its ten events is.
SCRIPT: tuple[str, ...] = (
    "message",
    "message",
    "/session",
    "message",
    "message",  # reuses a partner chat's eventId (of the partner's event 1)
    "/history",
    '/checkpoint save "cp"',
    "message",
    "/checkpoint list",  # reuses a partner chat's eventId (of the partner's event 5)
    "message",
)
REUSED = {4: 1, 8: 5}  # own index -> the partner's index whose id it takes
REDELIVERED_INDEX = (2, 4, 0, 2, 1, 3)  # phase-one events, a third of them /session
REPUBLISHED_INDEX = (5, 2, 6, 8, 7, 3)
CHAT_LABEL = re.compile(r"chat (\d+) message")


@dataclass(frozen=True)
class Event:
    chat: int
    index: int
    doc: dict[str, Any]

    @property
    def event_id(self) -> str:
        return str(self.doc["eventId"])

    @property
    def is_message(self) -> bool:
        return self.doc["type"] == "message.inbound" and not str(self.doc["text"]).startswith("/")

    @property
    def key(self) -> str:
        return key_of(self.doc)

    @property
    def body(self) -> bytes:
        return json.dumps(self.doc).encode()


@dataclass(frozen=True)
class Duplicate:
    event: Event
    how: str  # "redelivered", "exact" or "reserialized"
    round: int  # published after the chat's event of this round (re-published ones)

    @property
    def body(self) -> bytes:
        return reserialized(self.event.doc) if self.how == "reserialized" else self.event.body


def chat_address(chat: int) -> tuple[str, str]:
    """(channel, peer): pairs of chats share a Telegram-style peer id on two channels."""
    return ("telegram" if chat % 2 == 0 else "discord", f"-100{1234500000 + chat // 2}")


def chat_source(chat: int, message_id: str) -> dict[str, Any]:
    channel, peer = chat_address(chat)
    if chat % 5 == 0:  # a group with a topic: the member writes, the group is the chat
        return source_doc(channel, peer, user=f"u{chat}", thread=f"topic-{chat}", message_id=message_id, group=True)
    return source_doc(channel, peer, message_id=message_id)


_CHATS_BY_ADDRESS = {chat_address(chat): chat for chat in range(CHATS)}


def partner(chat: int) -> int:
    return (chat + 1 + chat % 37) % CHATS


def own_id(chat: int, index: int) -> str:
    return f"m{chat:03d}.{index}"


def message_text(chat: int, index: int) -> str:
    return f"chat {chat} message {index}"


def build_events() -> list[list[Event]]:
    chats = []
    for chat in range(CHATS):
        events = []
        for index, what in enumerate(SCRIPT):
            event_id = own_id(partner(chat), REUSED[index]) if index in REUSED else own_id(chat, index)
            source = chat_source(chat, f"{chat}-{index}")
            if what == "message":
                doc = inbound_doc(event_id, source, message_text(chat, index))
            elif index % 2:  # some commands as command events, some as message text
                doc = command_doc(event_id, source, what)
            else:
                doc = inbound_doc(event_id, source, what)
            events.append(Event(chat, index, doc))
        chats.append(events)
    return chats


def build_duplicates(chats: list[list[Event]]) -> list[Duplicate]:
    duplicates = []
    for k, chat in enumerate(range(0, CHATS, 4)):
        duplicates.append(Duplicate(chats[chat][REDELIVERED_INDEX[k % 6]], "redelivered", -1))
    for k, chat in enumerate(range(2, CHATS, 4)):
        index = REPUBLISHED_INDEX[k % 6]
        when = ROUNDS - 1 if k % 2 == 0 else max(index, PHASE_ONE_ROUNDS)
        how = "exact" if k < 25 else "reserialized"
        duplicates.append(Duplicate(chats[chat][index], how, when))
    return duplicates


def answer_text(turn_text: str) -> str:
    return f"answer to [{turn_text}]"


@dataclass
class Outbound:
    """Everything the workers published on one exchange: (routing key, raw body, parsed body)."""

    items: list[tuple[str, bytes, dict[str, Any]]] = field(default_factory=list)

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        self.items.append((message.routing_key or "", message.body, json.loads(message.body)))


@dataclass
class Table:
    events: int = 0
    chats: int = CHATS
    reused_ids: int = 0
    redelivered: int = 0
    broker_redeliveries: int = 0
    republished_exact: int = 0
    republished_reserialized: int = 0
    agent_answers: int = 0
    entries_misplaced: int = 0
    turns_misplaced: int = 0
    replies_misplaced: int = 0
    lost: int = 0
    doubled: int = 0
    reordered_chats: int = 0
    changed_bytes: int = 0  # an outbound id published twice with different bytes
    duplicates_identical: int = 0
    dead_lettered: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        return self.redelivered + self.republished_exact + self.republished_reserialized

    @property
    def clean(self) -> bool:
        return not any(
            (
                self.entries_misplaced,
                self.turns_misplaced,
                self.replies_misplaced,
                self.lost,
                self.doubled,
                self.reordered_chats,
                self.changed_bytes,
                self.dead_lettered,
                self.duplicates_identical != self.duplicates,
            )
        )

    def render(self, workers: int, seconds: float) -> str:
        rows = [
            ("events (distinct)", f"{self.events}"),
            ("chats", f"{self.chats}"),
            ("events reusing another chat's eventId", f"{self.reused_ids}"),
            ("duplicates redelivered", f"{self.redelivered} (broker-flagged redeliveries: {self.broker_redeliveries})"),
            (
                "duplicates re-published",
                f"{self.republished_exact + self.republished_reserialized} "
                f"({self.republished_exact} byte-exact, {self.republished_reserialized} re-serialized)",
            ),
            ("agent answers published", f"{self.agent_answers}"),
            ("entries in another chat", f"{self.entries_misplaced}"),
            ("turns in another chat", f"{self.turns_misplaced}"),
            ("replies in another chat", f"{self.replies_misplaced}"),
            ("lost", f"{self.lost}"),
            ("doubled", f"{self.doubled}"),
            ("chats out of order", f"{self.reordered_chats}"),
            ("outbound ids re-published with other bytes", f"{self.changed_bytes}"),
            ("duplicates byte-identical", f"{self.duplicates_identical} of {self.duplicates}"),
            ("dead-lettered", f"{self.dead_lettered}"),
        ]
        width = max(len(name) for name, _ in rows)
        lines = [f"scoped idempotency stress: {workers} worker processes, {seconds:.1f}s"]
        lines += [f"  {name:<{width}}  {value}" for name, value in rows]
        lines += [f"  note: {note}" for note in self.notes[:20]]
        return "\n".join(lines)


def chat_of_delivery(delivery: dict[str, Any]) -> int | None:
    """The chat a delivery points at, from (channel, to), or None if it is no chat of the plan."""
    return _CHATS_BY_ADDRESS.get((str(delivery.get("channel")), str(delivery.get("to"))))


def group_by_id(outbound: list[tuple[str, bytes, dict[str, Any]]]) -> dict[str, list[bytes]]:
    copies: dict[str, list[bytes]] = defaultdict(list)
    for _key, body, doc in outbound:
        copies[str(doc.get("eventId"))].append(body)
    return copies


def labels_in(text: str) -> set[int]:
    return {int(found) for found in CHAT_LABEL.findall(text)}


@dataclass
class Plan:
    chats: list[list[Event]]
    duplicates: list[Duplicate]

    @classmethod
    def build(cls) -> Plan:
        chats = build_events()
        return cls(chats, build_duplicates(chats))

    def event(self, chat: int | None, event_id: str) -> Event | None:
        if chat is None:
            return None
        return next((e for e in self.chats[chat] if e.event_id == event_id), None)

    def all_events(self) -> list[Event]:
        return [event for events in self.chats for event in events]


def outputs_by_event(plan: Plan, turns: Outbound, replies: Outbound) -> dict[tuple[int, str], list[bytes]]:
    """(chat, eventId) -> the raw bodies of what answers it in kind (turns of messages, replies of
    commands), matched by where they are routed; used to wait for the stream to finish."""
    found: dict[tuple[int, str], list[bytes]] = defaultdict(list)
    for source, wanted in ((turns, "turn"), (replies, "command")):
        for _key, body, doc in source.items:
            if wanted == "command" and doc.get("kind") == "assistant":
                continue
            chat = chat_of_delivery(doc.get("delivery") or {})
            if chat is not None:
                found[(chat, str(doc.get("inReplyTo")))].append(body)
    return found


def answered_messages(replies: Outbound) -> set[tuple[int, str]]:
    return {
        (chat, str(doc.get("inReplyTo")))
        for _key, _body, doc in replies.items
        if doc.get("kind") == "assistant" and (chat := chat_of_delivery(doc.get("delivery") or {})) is not None
    }


def missing(plan: Plan, events: list[Event], turns: Outbound, replies: Outbound) -> int:
    """How many of `events` still lack their turn, their agent's answer or their command reply."""
    outputs = outputs_by_event(plan, turns, replies)
    answered = answered_messages(replies)
    return sum(
        1
        for e in events
        if not outputs.get((e.chat, e.event_id)) or (e.is_message and (e.chat, e.event_id) not in answered)
    )


def duplicates_seen(plan: Plan, duplicates: list[Duplicate], turns: Outbound, replies: Outbound) -> int:
    """How many duplicates have had their outcome published again (a second copy of it)."""
    outputs = outputs_by_event(plan, turns, replies)
    return sum(1 for d in duplicates if len(outputs.get((d.event.chat, d.event.event_id), [])) >= 2)
