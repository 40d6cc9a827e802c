"""Checkpoints, summaries and key-rotation scans of the SQLite store (mixed into SqliteStore)."""

from __future__ import annotations

from typing import Any

from schemas import Checkpoint, Summary
from worker.stores.base import StoredEntry
from worker.stores.sqlite_attempts import SqliteAttempts
from worker.stores.sqlite_bytes import shift_stored_bytes
from worker.stores.sqlite_db import Connection, SqliteDatabase
from worker.stores.sqlite_rows import ENTRY_COLUMNS, checkpoint_from_doc, entry_from_row, summary_from_doc, to_ms


def _placeholders(count: int) -> str:
    return ",".join("?" * count)


class SqliteRecords(SqliteAttempts):
    _db: SqliteDatabase

    # Checkpoints and summaries ---------------------------------------------------------------
    async def insert_checkpoint(self, checkpoint: Checkpoint) -> None:
        await self._update(
            "INSERT INTO checkpoints (id, session_id, doc, created_at) VALUES (?, ?, ?, ?)",
            (checkpoint.id, checkpoint.session_id, checkpoint.model_dump_json(), to_ms(checkpoint.created_at)),
        )

    async def get_checkpoint(self, checkpoint_id: str) -> Checkpoint | None:
        def run(conn: Connection) -> Checkpoint | None:
            row = conn.execute("SELECT doc FROM checkpoints WHERE id = ?", (checkpoint_id,)).fetchone()
            return None if row is None else checkpoint_from_doc(row[0])

        return await self._db.read(run)

    async def list_checkpoints(self, session_ids: list[str]) -> list[Checkpoint]:
        def run(conn: Connection) -> list[Checkpoint]:
            rows = conn.execute(
                f"SELECT doc FROM checkpoints WHERE session_id IN ({_placeholders(len(session_ids))})"
                " ORDER BY created_at, id",
                session_ids,
            ).fetchall()
            return [checkpoint_from_doc(row[0]) for row in rows]

        return await self._db.read(run) if session_ids else []

    async def delete_checkpoint(self, checkpoint_id: str) -> bool:
        return await self._update("DELETE FROM checkpoints WHERE id = ?", (checkpoint_id,))

    async def insert_summary(self, summary: Summary) -> None:
        await self._update(
            "INSERT INTO summaries (id, session_id, from_seq, to_seq, doc) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO NOTHING",
            (summary.id, summary.session_id, summary.from_seq, summary.to_seq, summary.model_dump_json()),
        )

    async def list_summaries(self, session_id: str) -> list[Summary]:
        def run(conn: Connection) -> list[Summary]:
            rows = conn.execute(
                "SELECT doc FROM summaries WHERE session_id = ? ORDER BY from_seq", (session_id,)
            ).fetchall()
            return [summary_from_doc(row[0]) for row in rows]

        return await self._db.read(run)

    async def summaries_before(self, session_id: str, before_seq: int, limit: int) -> list[Summary]:
        def run(conn: Connection) -> list[Summary]:
            rows = conn.execute(
                "SELECT doc FROM summaries WHERE session_id = ? AND to_seq < ? ORDER BY to_seq DESC LIMIT ?",
                (session_id, before_seq, limit),
            ).fetchall()
            return [summary_from_doc(row[0]) for row in rows]

        return await self._db.read(run)

    # Key rotation ----------------------------------------------------------------------------
    async def count_unsealed(self, key_id: str) -> int:
        def run(conn: Connection) -> int:
            row = conn.execute("SELECT COUNT(*) FROM entries WHERE key_id IS NULL OR key_id != ?", (key_id,)).fetchone()
            return int(row[0])

        return await self._db.read(run)

    async def scan_unsealed(self, key_id: str, after: str | None, limit: int) -> tuple[list[StoredEntry], str | None]:
        def run(conn: Connection) -> tuple[list[StoredEntry], str | None]:
            rows = conn.execute(
                f"SELECT rowid, {ENTRY_COLUMNS} FROM entries WHERE rowid > ? AND (key_id IS NULL OR key_id != ?)"
                " ORDER BY rowid LIMIT ?",
                (int(after or 0), key_id, limit),
            ).fetchall()
            return [entry_from_row(row[1:]) for row in rows], (str(rows[-1][0]) if rows else after)

        return await self._db.read(run)

    async def reseal_entry(self, entry: StoredEntry, payload: bytes, key_id: str) -> bool:
        where = "WHERE session_id = ? AND seq = ? AND key_id IS ?"
        params = (entry.session_id, entry.seq, entry.key_id)

        def run(conn: Connection) -> bool:
            row = conn.execute(f"SELECT length(payload) FROM entries {where}", params).fetchone()
            if row is None:
                return False
            conn.execute(f"UPDATE entries SET payload = ?, key_id = ? {where}", (payload, key_id, *params))
            if len(payload) != row[0]:  # a sealed payload is longer than the plaintext: both counters follow
                shift_stored_bytes(conn, entry.session_id, len(payload) - int(row[0]))
            return True

        return await self._db.write(run)

    async def scan_checkpoints(self, after: str | None, limit: int) -> list[Checkpoint]:
        def run(conn: Connection) -> list[Checkpoint]:
            rows = conn.execute("SELECT doc FROM checkpoints WHERE id > ? ORDER BY id LIMIT ?", (after or "", limit))
            return [checkpoint_from_doc(row[0]) for row in rows.fetchall()]

        return await self._db.read(run)

    async def replace_checkpoint_text(
        self, checkpoint_id: str, name: str, description: str | None, sealed_with: str | None
    ) -> None:
        def run(conn: Connection) -> None:
            row = conn.execute("SELECT doc FROM checkpoints WHERE id = ?", (checkpoint_id,)).fetchone()
            if row is not None:
                texts = {"name": name, "description": description, "sealed_with": sealed_with}
                updated = checkpoint_from_doc(row[0]).model_copy(update=texts)
                conn.execute("UPDATE checkpoints SET doc = ? WHERE id = ?", (updated.model_dump_json(), checkpoint_id))

        await self._db.write(run)

    async def scan_summaries(self, after: str | None, limit: int) -> list[Summary]:
        def run(conn: Connection) -> list[Summary]:
            rows = conn.execute("SELECT doc FROM summaries WHERE id > ? ORDER BY id LIMIT ?", (after or "", limit))
            return [summary_from_doc(row[0]) for row in rows.fetchall()]

        return await self._db.read(run)

    async def replace_summary_content(self, summary_id: str, content: str, sealed_with: str | None) -> None:
        def run(conn: Connection) -> None:
            row = conn.execute("SELECT doc FROM summaries WHERE id = ?", (summary_id,)).fetchone()
            if row is not None:
                updated = summary_from_doc(row[0]).model_copy(update={"content": content, "sealed_with": sealed_with})
                conn.execute("UPDATE summaries SET doc = ? WHERE id = ?", (updated.model_dump_json(), summary_id))

        await self._db.write(run)

    async def reclaim(self) -> None:
        # Old page images live on in the WAL until a checkpoint; TRUNCATE also empties the file.
        await self._db.write(lambda conn: conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall(), alone=True)

    # Helpers ---
    async def _update(self, sql: str, params: tuple[Any, ...]) -> bool:
        return await self._db.write(lambda conn: conn.execute(sql, params).rowcount == 1)

    async def _entries(self, sql: str, params: tuple[Any, ...]) -> list[StoredEntry]:
        def run(conn: Connection) -> list[StoredEntry]:
            return [entry_from_row(row) for row in conn.execute(sql, params).fetchall()]

        return await self._db.read(run)
