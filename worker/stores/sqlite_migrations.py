"""Upgrades of older SQLite stores, each run once and recorded in SQLite's user_version."""

from __future__ import annotations

import sqlite3

from schemas import DeliveryContext
from worker.idempotency import legacy_entry_key

SCOPED_EVENT_KEYS = 1  # entries and outcomes carry fingerprints; entries' event ids are scoped


def migrate_event_keys(conn: sqlite3.Connection) -> None:
    """Adds the fingerprint columns and rewrites older entries' bare event ids as scoped keys, so
    that an event applied before the upgrade is still recognised when it comes back."""
    if conn.execute("PRAGMA user_version").fetchone()[0] >= SCOPED_EVENT_KEYS:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
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
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _delivery(text: str | None) -> DeliveryContext | None:
    return None if text is None else DeliveryContext.model_validate_json(text)
