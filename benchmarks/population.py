"""Pre-filling a SQLite store for the growth cases: many sessions, or long transcripts.

Rows go in through the store's own row codecs with executemany (the API would take minutes for a
million entries); payloads are really sealed with the benchmark's key, as the worker would.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from schemas import DeliveryContext, SessionEntry
from worker.crypto import EncryptingCodec
from worker.payload import pack_payload
from worker.scope import ChatAddress, session_key
from worker.stores.base import StoredEntry
from worker.stores.sqlite_rows import ENTRY_COLUMNS, SCHEMA, SESSION_COLUMNS, entry_params, session_params

BENCH_CHANNEL = "bench"


def slot_user(index: int) -> str:
    return f"u{index}"


def slot_key(index: int) -> str:
    user = slot_user(index)
    return session_key("per-channel-peer", ChatAddress(channel=BENCH_CHANNEL, user_id=user, peer_id=user))


def _session(index: int, entries: int, now: datetime, prefix: str) -> SessionEntry:
    return SessionEntry(
        id=f"s_{prefix}{index:07d}",
        key=slot_key(index) if prefix == "" else f"agent:main:stored:peer:{index}",
        agent_id="main",
        generation=1,
        created_at=now,
        updated_at=now,
        last_activity_at=now,
        message_count=entries,
        last_seq=entries,
        channel=BENCH_CHANNEL,
        delivery_context=DeliveryContext(channel=BENCH_CHANNEL, to=slot_user(index)),
    )


def populate(path: str, *, idle_sessions: int, long_slots: int, entries_per_slot: int, codec: EncryptingCodec) -> None:
    """`idle_sessions` unrelated sessions, and `long_slots` bench slots with long transcripts."""
    now = datetime.now(UTC).replace(microsecond=0)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(SCHEMA)  # the store's own schema, as ensure_schema() creates it
    marks = ",".join("?" * len(SESSION_COLUMNS.split(",")))
    with conn:
        conn.executemany(
            f"INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ({marks})",
            (session_params(_session(n, 0, now, "idle")) for n in range(idle_sessions)),
        )
        conn.executemany(
            f"INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ({marks})",
            (session_params(_session(n, entries_per_slot, now, "")) for n in range(long_slots)),
        )
    entry_marks = ",".join("?" * len(ENTRY_COLUMNS.split(",")))
    text = "an earlier message of about two hundred bytes, " * 4
    for slot in range(long_slots):
        session_id = f"s_{slot:07d}"
        rows = []
        for seq in range(1, entries_per_slot + 1):
            sealed = codec.seal(session_id, seq, pack_payload(text, None, None, None))
            rows.append(
                entry_params(
                    StoredEntry(
                        session_id=session_id,
                        seq=seq,
                        event_id=f"pre-{slot}-{seq}",
                        role="user" if seq % 2 else "assistant",
                        timestamp=now,
                        token_count=40,
                        important=False,
                        input_tokens=0,
                        output_tokens=0,
                        has_usage=False,
                        delivery=None,
                        payload=sealed.blob,
                        key_id=sealed.key_id,
                    )
                )
            )
        with conn:
            conn.executemany(f"INSERT INTO entries ({ENTRY_COLUMNS}) VALUES ({entry_marks})", rows)
    conn.close()
