"""Row <-> document conversion for the SQLite store. Times are integer milliseconds (UTC)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import Any

from schemas import Checkpoint, DeliveryContext, SessionEntry, Summary
from worker.stores.base import StoredEntry

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL,
    key TEXT NOT NULL,
    generation INTEGER NOT NULL,
    status TEXT NOT NULL,
    archived_reason TEXT,
    archived_at INTEGER,
    channel TEXT,
    last_channel TEXT,
    last_to TEXT,
    last_account_id TEXT,
    last_thread_id TEXT,
    delivery_context TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    last_activity_at INTEGER NOT NULL,
    message_count INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    stored_bytes INTEGER NOT NULL DEFAULT 0,
    model TEXT,
    origin TEXT,
    view TEXT NOT NULL,
    opened_by TEXT,
    version INTEGER NOT NULL DEFAULT 0,
    archived_by TEXT,
    UNIQUE (agent_id, key, generation)
);
CREATE INDEX IF NOT EXISTS sessions_slot_status ON sessions (agent_id, key, status);
CREATE INDEX IF NOT EXISTS sessions_agent_activity
    ON sessions (agent_id, status, last_activity_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS sessions_agent_recent ON sessions (agent_id, last_activity_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS sessions_activity ON sessions (last_activity_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS sessions_agent_created ON sessions (agent_id, created_at, id);
CREATE INDEX IF NOT EXISTS sessions_created ON sessions (created_at, id);
CREATE TABLE IF NOT EXISTS entries (
    session_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event_id TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    ts INTEGER NOT NULL,
    token_count INTEGER NOT NULL,
    important INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    has_usage INTEGER NOT NULL,
    delivery TEXT,
    payload BLOB NOT NULL,
    key_id TEXT,
    fingerprint TEXT,
    PRIMARY KEY (session_id, seq)
);
CREATE INDEX IF NOT EXISTS entries_pinned ON entries (session_id, seq) WHERE important = 1 OR role = 'system';
CREATE TABLE IF NOT EXISTS checkpoints (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    doc TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS checkpoints_session ON checkpoints (session_id, created_at);
CREATE TABLE IF NOT EXISTS summaries (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    from_seq INTEGER NOT NULL,
    to_seq INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS summaries_session ON summaries (session_id, to_seq);
CREATE TABLE IF NOT EXISTS outcomes (
    event_id TEXT PRIMARY KEY,
    doc TEXT NOT NULL,
    at INTEGER NOT NULL,
    fingerprint TEXT
);
CREATE INDEX IF NOT EXISTS outcomes_at ON outcomes (at);
CREATE TABLE IF NOT EXISTS settings (
    agent_id TEXT PRIMARY KEY,
    doc TEXT NOT NULL
);
"""

ONE_ACTIVE_PER_SLOT = "sessions_one_active"
# Older stores may hold two active sessions in a slot, left by a creation race before the index
# existed; all but the newest (the one every reader picked) are archived as superseded.
_ARCHIVE_DUPLICATE_ACTIVES = """
UPDATE sessions SET status = 'archived', archived_reason = 'superseded', archived_at = updated_at,
    version = version + 1
WHERE status = 'active' AND EXISTS (
    SELECT 1 FROM sessions AS newer
    WHERE newer.agent_id = sessions.agent_id AND newer.key = sessions.key
        AND newer.status = 'active' AND newer.generation > sessions.generation
)
"""


def ensure_one_active_per_slot(conn: sqlite3.Connection) -> None:
    """A unique index over the active sessions of each slot: of two processes racing to open a
    slot's session, the second insert fails and that creator adopts the first one's session.
    Built once, after archiving any duplicates an older store holds (the building would fail)."""
    found = "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?"
    if conn.execute(found, (ONE_ACTIVE_PER_SLOT,)).fetchone() is not None:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(_ARCHIVE_DUPLICATE_ACTIVES)
        conn.execute(
            f"CREATE UNIQUE INDEX IF NOT EXISTS {ONE_ACTIVE_PER_SLOT} ON sessions (agent_id, key)"
            " WHERE status = 'active'"
        )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite may have rolled back already (disk full, I/O error)
            conn.execute("ROLLBACK")
        raise


SESSION_COLUMNS = (
    "id, agent_id, key, generation, status, archived_reason, archived_at, channel, last_channel,"
    " last_to, last_account_id, last_thread_id, delivery_context, created_at, updated_at,"
    " last_activity_at, message_count, last_seq, input_tokens, output_tokens, stored_bytes, model, origin, view,"
    " opened_by, version, archived_by"
)
ENTRY_COLUMNS = (
    "session_id, seq, event_id, role, ts, token_count, important, input_tokens, output_tokens,"
    " has_usage, delivery, payload, key_id, fingerprint"
)


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def from_ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC)


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def session_params(session: SessionEntry) -> tuple[Any, ...]:
    doc = session.model_dump(mode="json")
    return (
        session.id,
        session.agent_id,
        session.key,
        session.generation,
        session.status,
        session.archived_reason,
        None if session.archived_at is None else to_ms(session.archived_at),
        session.channel,
        session.last_channel,
        session.last_to,
        session.last_account_id,
        session.last_thread_id,
        _json(doc["delivery_context"]),
        to_ms(session.created_at),
        to_ms(session.updated_at),
        to_ms(session.last_activity_at),
        session.message_count,
        session.last_seq,
        session.input_tokens,
        session.output_tokens,
        session.stored_bytes,
        _json(doc["model"]),
        _json(doc["origin"]),
        _json(doc["view"]),
        session.opened_by,
        session.version,
        session.archived_by,
    )


def session_from_row(row: sqlite3.Row | tuple[Any, ...]) -> SessionEntry:
    (
        sid,
        agent_id,
        key,
        generation,
        status,
        archived_reason,
        archived_at,
        channel,
        last_channel,
        last_to,
        last_account_id,
        last_thread_id,
        delivery,
        created_at,
        updated_at,
        last_activity_at,
        message_count,
        last_seq,
        input_tokens,
        output_tokens,
        stored_bytes,
        model,
        origin,
        view,
        opened_by,
        version,
        archived_by,
    ) = row
    return SessionEntry.model_validate(
        {
            "id": sid,
            "agent_id": agent_id,
            "key": key,
            "generation": generation,
            "status": status,
            "archived_reason": archived_reason,
            "archived_at": None if archived_at is None else from_ms(archived_at),
            "channel": channel,
            "last_channel": last_channel,
            "last_to": last_to,
            "last_account_id": last_account_id,
            "last_thread_id": last_thread_id,
            "delivery_context": None if delivery is None else json.loads(delivery),
            "created_at": from_ms(created_at),
            "updated_at": from_ms(updated_at),
            "last_activity_at": from_ms(last_activity_at),
            "message_count": message_count,
            "last_seq": last_seq,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "stored_bytes": stored_bytes,
            "model": None if model is None else json.loads(model),
            "origin": None if origin is None else json.loads(origin),
            "view": json.loads(view),
            "opened_by": opened_by,
            "version": version,
            "archived_by": archived_by,
        }
    )


def entry_params(entry: StoredEntry, token_count: int | None = None) -> tuple[Any, ...]:
    """The entry's row; `token_count`, when given, in place of the entry's own."""
    return (
        entry.session_id,
        entry.seq,
        entry.event_id,
        entry.role,
        to_ms(entry.timestamp),
        entry.token_count if token_count is None else token_count,
        int(entry.important),
        entry.input_tokens,
        entry.output_tokens,
        int(entry.has_usage),
        None if entry.delivery is None else entry.delivery.model_dump_json(),
        entry.payload,
        entry.key_id,
        entry.fingerprint,
    )


def entry_from_row(row: tuple[Any, ...]) -> StoredEntry:
    (
        session_id,
        seq,
        event_id,
        role,
        ts,
        token_count,
        important,
        input_tokens,
        output_tokens,
        has_usage,
        delivery,
        payload,
        key_id,
        fingerprint,
    ) = row
    return StoredEntry(
        session_id=session_id,
        seq=seq,
        event_id=event_id,
        role=role,
        timestamp=from_ms(ts),
        token_count=token_count,
        important=bool(important),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        has_usage=bool(has_usage),
        delivery=None if delivery is None else DeliveryContext.model_validate_json(delivery),
        payload=bytes(payload),
        key_id=key_id,
        fingerprint=fingerprint,
    )


def checkpoint_from_doc(doc: str) -> Checkpoint:
    return Checkpoint.model_validate_json(doc)


def summary_from_doc(doc: str) -> Summary:
    return Summary.model_validate_json(doc)
