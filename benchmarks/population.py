"""Pre-filling a SQLite store for the growth cases: many sessions, or long transcripts.

Rows go in through the store's own row codecs with executemany (the API would take minutes for a
million entries); payloads are really sealed with the benchmark's key, as the worker would.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from schemas import DeliveryContext, SessionEntry
from worker.engine.crypto import EncryptingCodec
from worker.engine.idempotency import scoped, session_scope
from worker.engine.payload import pack_payload
from worker.engine.scope import ChatAddress, session_key
from worker.stores.base import StoredEntry
from worker.stores.sqlite_migrations import SCHEMA_STEPS, create_tables
from worker.stores.sqlite_rows import ENTRY_COLUMNS, SESSION_COLUMNS, entry_params, session_params

BENCH_CHANNEL = "bench"


def slot_user(index: int) -> str:
    return f"u{index}"


def slot_key(index: int) -> str:
    user = slot_user(index)
    return session_key("per-channel-peer", ChatAddress(channel=BENCH_CHANNEL, user_id=user, peer_id=user))


def _session_id(index: int, prefix: str) -> str:
    return f"s_{prefix}{index:07d}"


def _session_key(index: int, prefix: str) -> str:
    return slot_key(index) if prefix == "" else f"agent:main:stored:peer:{index}"


def _route(index: int) -> DeliveryContext:
    return DeliveryContext(channel=BENCH_CHANNEL, to=slot_user(index))


def _session(index: int, entries: int, now: datetime, prefix: str) -> SessionEntry:
    return SessionEntry(
        id=_session_id(index, prefix),
        key=_session_key(index, prefix),
        agent_id="main",
        generation=1,
        created_at=now,
        updated_at=now,
        last_activity_at=now,
        message_count=entries,
        last_seq=entries,
        channel=BENCH_CHANNEL,
        delivery_context=_route(index),
    )


def _session_rows(count: int, entries: int, now: datetime, prefix: str) -> Iterator[tuple[Any, ...]]:
    """Rows of `count` sessions: the first made by the store's own row codec, the others copied
    from it with their own id, key and route (a pydantic round trip per row would take seconds
    for 100,000 sessions)."""
    if count == 0:
        return
    first = session_params(_session(0, entries, now, prefix))
    columns = [name.strip() for name in SESSION_COLUMNS.split(",")]
    at_id, at_key, at_route = columns.index("id"), columns.index("key"), columns.index("delivery_context")
    for index in range(count):
        row = list(first)
        row[at_id], row[at_key] = _session_id(index, prefix), _session_key(index, prefix)
        row[at_route] = _route(index).model_dump_json()  # the codec's compact JSON (ASCII here)
        yield tuple(row)


def insert_entries(
    conn: sqlite3.Connection,
    session_id: str,
    count: int,
    *,
    text: Callable[[int], str],
    tokens: Callable[[str], int],
    important_every: int = 0,
    codec: EncryptingCodec | None = None,
    now: datetime | None = None,
) -> None:
    """Write entries 1..count of a session straight into SQLite with the store's own row codec
    (payloads sealed when a codec is given), and bring the session's counters along."""
    moment = now or datetime.now(UTC).replace(microsecond=0)
    rows = []
    for seq in range(1, count + 1):
        body = text(seq)
        payload = pack_payload(body, None, None, None)
        sealed = codec.seal(session_id, seq, payload) if codec is not None else None
        rows.append(
            entry_params(
                StoredEntry(
                    session_id=session_id,
                    seq=seq,
                    event_id=scoped(f"pre-{session_id}-{seq}", session_scope(session_id)),  # as the store keys it
                    role="system" if seq == 1 else ("user" if seq % 2 else "assistant"),
                    timestamp=moment,
                    token_count=tokens(body),
                    important=bool(important_every) and seq % important_every == 0,
                    input_tokens=0,
                    output_tokens=0,
                    has_usage=False,
                    delivery=None,
                    payload=sealed.blob if sealed else payload,
                    key_id=sealed.key_id if sealed else None,
                )
            )
        )
    marks = ",".join("?" * len(ENTRY_COLUMNS.split(",")))
    with conn:
        conn.executemany(f"INSERT INTO entries ({ENTRY_COLUMNS}) VALUES ({marks})", rows)
        conn.execute("UPDATE sessions SET last_seq = ?, message_count = ? WHERE id = ?", (count, count, session_id))


def populate(path: str, *, idle_sessions: int, long_slots: int, entries_per_slot: int, codec: EncryptingCodec) -> None:
    """`idle_sessions` unrelated sessions, and `long_slots` bench slots with long transcripts."""
    now = datetime.now(UTC).replace(microsecond=0)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    create_tables(conn)  # the store's own tables, as ensure_schema() creates them
    marks = ",".join("?" * len(SESSION_COLUMNS.split(",")))
    with conn:
        conn.executemany(
            f"INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ({marks})",
            _session_rows(idle_sessions, 0, now, "idle"),
        )
        conn.executemany(
            f"INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ({marks})",
            _session_rows(long_slots, entries_per_slot, now, ""),
        )
    text = "an earlier message of about two hundred bytes, " * 4
    for slot in range(long_slots):
        insert_entries(
            conn, f"s_{slot:07d}", entries_per_slot, text=lambda _: text, tokens=lambda _: 40, codec=codec, now=now
        )
    # The store's own steps count the stored bytes and mark the file current: a worker opening a
    # copy finds nothing to upgrade (rewriting a million rows at its start would be what it measures).
    for step in SCHEMA_STEPS:
        step(conn)
    conn.close()


def prefill(
    path: str, templates: Path, *, idle_sessions: int, long_slots: int, entries_per_slot: int, codec: EncryptingCodec
) -> None:
    """A store at `path` as populate() makes it, copied from a template in `templates` that is made
    the first time it is asked for: every round of a case starts from the same file, and a case's
    drain never follows straight on the writing of a large store. The copy is flushed to disk, so
    that the worker's first checkpoint does not pay for writing it."""
    template = templates / f"template-{idle_sessions}-{long_slots}-{entries_per_slot}.db"
    if not template.exists():
        building = template.with_suffix(".building")
        populate(
            str(building),
            idle_sessions=idle_sessions,
            long_slots=long_slots,
            entries_per_slot=entries_per_slot,
            codec=codec,
        )
        building.rename(template)  # populate() closed its connection: the WAL is folded in and gone
    shutil.copyfile(template, path)
    with open(path, "rb+") as copy:
        os.fsync(copy.fileno())
