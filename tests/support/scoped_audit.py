"""The audit of the scoped-idempotency stress test: every turn, reply and transcript entry checked
against the chat it must belong to (see tests/support/scoped_stress.py for the plan)."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

from tests.support.scoped_stress import (
    Duplicate,
    Event,
    Outbound,
    Plan,
    Table,
    answer_text,
    chat_of_delivery,
    group_by_id,
    labels_in,
    message_text,
)
from worker.sessions.manager import SessionManager


async def sessions_of(plan: Plan, manager: SessionManager) -> dict[int, str]:
    """Each chat's session, found in the store by the chat's address (as the worker finds it)."""
    found = {}
    for events in plan.chats:
        source = events[0].doc["source"]
        session = await manager.get_or_create_session(
            user_id=source.get("userId"),
            channel_id=source["channel"],
            peer_id=source["peerId"],
            chat_type=source["chatType"],
        )
        found[events[0].chat] = session.id
    return found


class Audit:
    def __init__(self, plan: Plan, sessions: dict[int, str], table: Table) -> None:
        self.plan = plan
        self.sessions = sessions
        self.table = table
        self.turn_ids: dict[tuple[int, str], set[str]] = defaultdict(set)
        self.reply_ids: dict[tuple[int, str, str], set[str]] = defaultdict(set)
        self.lost: set[tuple[int, str]] = set()
        self.doubled: set[tuple[int, str]] = set()

    def misplaced(self, what: str, doc: dict[str, Any]) -> None:
        self.table.notes.append(f"{what} misplaced: {str(doc)[:300]}")

    def _route_ok(self, event: Event, key: str, doc: dict[str, Any]) -> bool:
        source, delivery = event.doc["source"], doc.get("delivery") or {}
        return (
            delivery.get("threadId") == source.get("threadId")
            and delivery.get("replyToId") == source.get("messageId")
            and (not key or key.split(".")[0] == source["channel"])
        )

    def turns(self, turns: Outbound) -> None:
        for _key, _body, doc in turns.items:
            chat = chat_of_delivery(doc.get("delivery") or {})
            event = self.plan.event(chat, str(doc.get("inReplyTo")))
            if (
                chat is None
                or event is None
                or not event.is_message
                or doc.get("text") != event.doc["text"]
                or doc.get("sessionId") != self.sessions[chat]
                or not self._route_ok(event, "", doc)
            ):
                self.table.turns_misplaced += 1
                self.misplaced("turn", doc)
                continue
            self.turn_ids[(chat, event.event_id)].add(str(doc["eventId"]))

    def replies(self, replies: Outbound) -> None:
        for key, _body, doc in replies.items:
            chat = chat_of_delivery(doc.get("delivery") or {})
            event = self.plan.event(chat, str(doc.get("inReplyTo")))
            if chat is None or event is None or not self._reply_fits(chat, event, key, doc):
                self.table.replies_misplaced += 1
                self.misplaced("reply", doc)
                continue
            kind = "assistant" if doc["kind"] == "assistant" else "command"
            self.reply_ids[(chat, event.event_id, kind)].add(str(doc["eventId"]))

    def _reply_fits(self, chat: int, event: Event, key: str, doc: dict[str, Any]) -> bool:
        if not self._route_ok(event, key, doc) or key != f"{event.doc['source']['channel']}.{doc.get('kind')}":
            return False
        text = str(doc.get("text"))
        if doc.get("kind") == "assistant":
            return (
                event.is_message
                and text == answer_text(str(event.doc["text"]))
                and doc.get("sessionId") == self.sessions[chat]
            )
        return (
            not event.is_message
            and doc.get("kind") in ("command-result", "error")
            and doc.get("sessionId") in (None, self.sessions[chat])
            and labels_in(text) <= {chat}
        )

    def completeness(self) -> None:
        for event in self.plan.all_events():
            ident = (event.chat, event.event_id)
            wanted = (
                [self.turn_ids[ident], self.reply_ids[(*ident, "assistant")]]
                if event.is_message
                else [self.reply_ids[(*ident, "command")]]
            )
            if any(not ids for ids in wanted):
                self.lost.add(ident)
            if any(len(ids) > 1 for ids in wanted):
                self.doubled.add(ident)

    async def transcripts(self, manager: SessionManager) -> None:
        for events in self.plan.chats:
            chat = events[0].chat
            entries = await manager.get_history(self.sessions[chat], limit=200)
            texts = {e.event_id: str(e.doc["text"]) for e in events if e.is_message}
            users = [str(entry.content) for entry in entries if entry.role == "user"]
            answers = Counter(str(entry.content) for entry in entries if entry.role == "assistant")
            misplaced = [str(entry.content) for entry in entries if labels_in(str(entry.content)) != {chat}]
            self.table.entries_misplaced += len(misplaced)
            self.table.notes.extend(f"chat {chat} holds another chat's entry {text[:80]!r}" for text in misplaced)
            copies = Counter(users)
            for event_id, text in texts.items():
                if copies[text] == 0 or answers[answer_text(text)] == 0:
                    self.lost.add((chat, event_id))
                if copies[text] > 1 or answers[answer_text(text)] > 1:
                    self.doubled.add((chat, event_id))
            # In publish order, as far as they are there (what is missing counts as lost above).
            expected = [message_text(chat, e.index) for e in events if e.is_message and copies[str(e.doc["text"])]]
            if list(dict.fromkeys(text for text in users if text in copies and labels_in(text) == {chat})) != expected:
                self.table.reordered_chats += 1

    def duplicates(self, turns: Outbound, replies: Outbound, duplicates: list[Duplicate]) -> None:
        copies = group_by_id(turns.items + replies.items)
        changed = {event_id: bodies for event_id, bodies in copies.items() if len(set(bodies)) > 1}
        self.table.changed_bytes = len(changed)
        for event_id, bodies in list(changed.items())[:5]:
            first, other = (json.loads(body) for body in list(dict.fromkeys(bodies))[:2])
            differ = {
                key: (first.get(key), other.get(key))
                for key in first.keys() | other.keys()
                if first.get(key) != other.get(key)
            }
            what = f"{first.get('type')} {first.get('kind', '')} {event_id} (in reply to {first.get('inReplyTo')})"
            self.table.notes.append(f"{what} re-published with other {str(differ)[:400]}")
        for duplicate in duplicates:
            ident = (duplicate.event.chat, duplicate.event.event_id)
            ids = self.turn_ids[ident] if duplicate.event.is_message else self.reply_ids[(*ident, "command")]
            identical = bool(ids) and all(len(copies[i]) >= 2 and len(set(copies[i])) == 1 for i in ids)
            self.table.duplicates_identical += identical
            if not identical:
                for i in ids:
                    texts = {json.loads(body).get("text") for body in copies[i]}
                    self.table.notes.append(f"  {i}: {len(copies[i])} copies, {len(texts)} distinct texts")
                self.table.notes.append(
                    f"duplicate ({duplicate.how}) of chat {ident[0]} {ident[1]}: not re-published as is"
                )

    def finish(self) -> None:
        self.table.lost = len(self.lost)
        self.table.doubled = len(self.doubled - self.lost)
        self.table.notes.extend(f"lost: chat {chat} {event_id}" for chat, event_id in sorted(self.lost)[:5])
        self.table.notes.extend(f"doubled: chat {chat} {event_id}" for chat, event_id in sorted(self.doubled)[:5])


async def audit(plan: Plan, turns: Outbound, replies: Outbound, manager: SessionManager, table: Table) -> Table:
    found = Audit(plan, await sessions_of(plan, manager), table)
    found.turns(turns)
    found.replies(replies)
    found.completeness()
    await found.transcripts(manager)
    found.duplicates(turns, replies, plan.duplicates)
    found.finish()
    return table
