"""The steps that bring a SQLite file to the current schema: the tables, then the upgrades of
older stores, each run once and recorded in SQLite's user_version."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from schemas import DeliveryContext
from worker.engine.idempotency import legacy_entry_key
from worker.stores.sqlite_attempts import ATTEMPTS_SCHEMA
from worker.stores.sqlite_bytes import AGENT_BYTES_TABLE, recount_agent_bytes
from worker.stores.sqlite_rows import SCHEMA, ensure_one_active_per_slot

SCOPED_EVENT_KEYS = 1  # entries and outcomes carry fingerprints; entries' event ids are scoped
STORED_BYTES = 2  # sessions count their transcript bytes as stored
AGENT_BYTES = 3  # a counter per agent of its sessions' stored bytes
ARCHIVED_BY = 4  # sessions name the event that archived them


def migrate_event_keys(conn: sqlite3.Connection) -> None:
    """Adds the fingerprint columns and rewrites older entries' bare event ids as scoped keys, so
    that an event applied before the upgrade is still recognised when it comes back."""
    if conn.execute("PRAGMA user_version").fetchone()[0] >= SCOPED_EVENT_KEYS:
        return
    with _immediate(conn):
        for table in ("entries", "outcomes"):
            columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            if "fingerprint" not in columns:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN fingerprint TEXT")
        rows = conn.execute(
            "SELECT entries.rowid, event_id, role, session_id, sessions.agent_id, delivery FROM entries"
            " JOIN sessions ON sessions.id = entries.session_id WHERE instr(event_id, char(31)) = 0"
        ).fetchall()
        updates = [
            (legacy_entry_key(event_id, role, session_id, agent_id, _delivery(delivery)), rowid)
            for rowid, event_id, role, session_id, agent_id, delivery in rows
        ]
        conn.executemany("UPDATE entries SET event_id = ? WHERE rowid = ?", updates)
        conn.execute(f"PRAGMA user_version = {SCOPED_EVENT_KEYS}")


@contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction: committed, or rolled back on any failure (disk full, I/O error)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite may have rolled back already
            conn.execute("ROLLBACK")
        raise


def _delivery(text: str | None) -> DeliveryContext | None:
    return None if text is None else DeliveryContext.model_validate_json(text)


def migrate_stored_bytes(conn: sqlite3.Connection) -> None:
    """Adds the sessions' stored-bytes counter, filled from their entries once."""
    if conn.execute("PRAGMA user_version").fetchone()[0] >= STORED_BYTES:
        return
    with _immediate(conn):
        columns = {row[1] for row in conn.execute("PRAGMA table_info(sessions)")}
        if "stored_bytes" not in columns:
            conn.execute("ALTER TABLE sessions ADD COLUMN stored_bytes INTEGER NOT NULL DEFAULT 0")
        conn.execute(
            "UPDATE sessions SET stored_bytes = coalesce("
            "(SELECT sum(length(payload)) FROM entries WHERE entries.session_id = sessions.id), 0)"
        )
        conn.execute(f"PRAGMA user_version = {STORED_BYTES}")


def migrate_agent_bytes(conn: sqlite3.Connection) -> None:
    """Adds the per-agent byte counters (worker/stores/sqlite_bytes.py), computed from the sessions once."""
    if conn.execute("PRAGMA user_version").fetchone()[0] >= AGENT_BYTES:
        return
    with _immediate(conn):
        conn.execute(AGENT_BYTES_TABLE)
        recount_agent_bytes(conn)
        conn.execute(f"PRAGMA user_version = {AGENT_BYTES}")


def migrate_archived_by(conn: sqlite3.Connection) -> None:
    """Adds the column naming the event that archived a session (empty for those archived before)."""
    if conn.execute("PRAGMA user_version").fetchone()[0] >= ARCHIVED_BY:
        return
    with _immediate(conn):
        columns = {row[1] for row in conn.execute("PRAGMA table_info(sessions)")}
        if "archived_by" not in columns:
            conn.execute("ALTER TABLE sessions ADD COLUMN archived_by TEXT")
        # A retry looks up what its event archived; only archived sessions carry the column.
        conn.execute(
            "CREATE INDEX IF NOT EXISTS sessions_archived_by ON sessions (archived_by) WHERE archived_by IS NOT NULL"
        )
        conn.execute(f"PRAGMA user_version = {ARCHIVED_BY}")


def create_tables(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)
    conn.executescript(ATTEMPTS_SCHEMA)


# In order, each alone (outside any other transaction): a new file and an old one alike end current.
SCHEMA_STEPS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    create_tables,
    ensure_one_active_per_slot,
    migrate_event_keys,
    migrate_stored_bytes,
    migrate_agent_bytes,
    migrate_archived_by,
)
