"""The per-agent byte counter of the SQLite store.

`agent_bytes` holds each agent's transcript bytes as stored: the sum of its sessions'
`stored_bytes`, changed in the same transaction as every write that changes one of those (an
append, a deletion, a trim, a reseal), so a budget check reads one row instead of summing the store.
"""

from __future__ import annotations

import sqlite3

AGENT_BYTES_TABLE = "CREATE TABLE IF NOT EXISTS agent_bytes (agent_id TEXT PRIMARY KEY, bytes INTEGER NOT NULL)"
_ADD_TO_AGENT = (
    "INSERT INTO agent_bytes (agent_id, bytes) SELECT agent_id, ? FROM sessions WHERE id = ?"
    " ON CONFLICT (agent_id) DO UPDATE SET bytes = bytes + excluded.bytes"
)


def count_agent_bytes(conn: sqlite3.Connection, session_id: str, delta: int) -> None:
    """Add `delta` to the counter of the session's agent (inside the caller's transaction)."""
    conn.execute(_ADD_TO_AGENT, (delta, session_id))


def shift_stored_bytes(conn: sqlite3.Connection, session_id: str, delta: int) -> None:
    """Add `delta` to the session's stored bytes and to its agent's counter, together."""
    conn.execute("UPDATE sessions SET stored_bytes = stored_bytes + ? WHERE id = ?", (delta, session_id))
    count_agent_bytes(conn, session_id, delta)


def recount_agent_bytes(conn: sqlite3.Connection) -> None:
    """Every agent's counter from its sessions (the one-time computation of the migration)."""
    conn.execute("DELETE FROM agent_bytes")
    conn.execute(
        "INSERT INTO agent_bytes (agent_id, bytes) SELECT agent_id, coalesce(sum(stored_bytes), 0) FROM sessions"
        " GROUP BY agent_id"
    )
