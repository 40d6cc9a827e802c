"""Scans and deletions of the SQLite store (mixed into SqliteStore), keeping the byte counters true."""

from __future__ import annotations

from typing import Any

from schemas import SessionEntry
from worker.stores.base import DeletedCounts, SessionScan
from worker.stores.sqlite_bytes import shift_stored_bytes
from worker.stores.sqlite_db import Connection
from worker.stores.sqlite_records import SqliteRecords
from worker.stores.sqlite_rows import SESSION_COLUMNS, session_from_row, to_ms

_OWNED = (("entries", "session_id"), ("checkpoints", "session_id"), ("summaries", "session_id"), ("sessions", "id"))


def _placeholders(count: int) -> str:
    return ",".join("?" * count)


class SqliteMaintenance(SqliteRecords):
    async def scan_sessions(self, scan: SessionScan) -> list[SessionEntry]:
        column = "created_at" if scan.field == "created_at" else "last_activity_at"
        clauses: list[str] = [f"{column} < ?"]
        params: list[Any] = [to_ms(scan.before)]
        for name, value in (("agent_id", scan.agent_id), ("status", scan.status)):
            if value is not None:
                clauses.append(f"{name} = ?")
                params.append(value)
        if scan.after is not None:
            clauses.append(f"({column} > ? OR ({column} = ? AND id > ?))")
            params.extend((to_ms(scan.after[0]), to_ms(scan.after[0]), scan.after[1]))
        sql = f"SELECT {SESSION_COLUMNS} FROM sessions WHERE {' AND '.join(clauses)} ORDER BY {column}, id LIMIT ?"

        def run(conn: Connection) -> list[SessionEntry]:
            return [session_from_row(row) for row in conn.execute(sql, (*params, scan.limit)).fetchall()]

        return await self._db.read(run)

    async def agent_ids(self) -> set[str]:
        """From the counters (a row per agent that ever had a session) and the settings."""

        def run(conn: Connection) -> set[str]:
            rows = conn.execute("SELECT agent_id FROM agent_bytes UNION SELECT agent_id FROM settings")
            return {str(row[0]) for row in rows.fetchall()}

        return await self._db.read(run)

    async def sessions_with_checkpoints(self, session_ids: list[str]) -> set[str]:
        def run(conn: Connection) -> set[str]:
            rows = conn.execute(
                f"SELECT DISTINCT session_id FROM checkpoints WHERE session_id IN ({_placeholders(len(session_ids))})",
                session_ids,
            ).fetchall()
            return {row[0] for row in rows}

        return await self._db.read(run) if session_ids else set()

    async def delete_sessions(self, session_ids: list[str]) -> DeletedCounts:
        marks = _placeholders(len(session_ids))

        def run(conn: Connection) -> DeletedCounts:
            freed = conn.execute(
                f"SELECT agent_id, sum(stored_bytes) FROM sessions WHERE id IN ({marks}) GROUP BY agent_id",
                session_ids,
            ).fetchall()
            conn.executemany("UPDATE agent_bytes SET bytes = bytes - ? WHERE agent_id = ?", [(b, a) for a, b in freed])
            counts = {
                table: conn.execute(f"DELETE FROM {table} WHERE {column} IN ({marks})", session_ids).rowcount
                for table, column in _OWNED
            }
            return DeletedCounts(**counts)

        return await self._db.write(run, bulky=True) if session_ids else DeletedCounts()

    async def agent_stored_bytes(self, agent_id: str) -> int:
        def run(conn: Connection) -> int:
            row = conn.execute("SELECT bytes FROM agent_bytes WHERE agent_id = ?", (agent_id,)).fetchone()
            return 0 if row is None else int(row[0])

        return await self._db.read(run)

    async def count_records(self, session_ids: list[str]) -> DeletedCounts:
        marks = _placeholders(len(session_ids))

        def run(conn: Connection) -> DeletedCounts:
            return DeletedCounts(
                **{
                    table: conn.execute(
                        f"SELECT count(*) FROM {table} WHERE {column} IN ({marks})", session_ids
                    ).fetchone()[0]
                    for table, column in _OWNED
                }
            )

        return await self._db.read(run) if session_ids else DeletedCounts()

    async def entries_after(self, session_id: str, seq: int, *, delete: bool) -> int:
        later = "FROM entries WHERE session_id = ? AND seq > ?"

        def run(conn: Connection) -> int:
            count, size = conn.execute(
                f"SELECT count(*), coalesce(sum(length(payload)), 0) {later}", (session_id, seq)
            ).fetchone()
            if delete and count:
                conn.execute(f"DELETE {later}", (session_id, seq))
                shift_stored_bytes(conn, session_id, -int(size))
            return int(count)

        return await (self._db.write(run, bulky=True) if delete else self._db.read(run))
