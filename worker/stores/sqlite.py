"""The embedded store: one SQLite file in WAL mode, same semantics as the MongoDB store."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import Any

from schemas import AgentSettings, ArchiveReason, DeliveryContext, SessionEntry, SessionStatus
from worker.engine.tokens import TokenCount
from worker.errors import StoreConflict
from worker.stores.base import (
    DuplicateEvent,
    RecordedOutcome,
    SessionQuery,
    SessionUpdate,
    StoredEntry,
    ViewChange,
)
from worker.stores.sqlite_bytes import count_agent_bytes
from worker.stores.sqlite_db import Connection, SqliteDatabase
from worker.stores.sqlite_maintenance import SqliteMaintenance
from worker.stores.sqlite_migrations import SCHEMA_STEPS
from worker.stores.sqlite_rows import (
    ENTRY_COLUMNS,
    SESSION_COLUMNS,
    entry_from_row,
    entry_params,
    session_from_row,
    session_params,
    to_ms,
)

_SELECT_SESSION = f"SELECT {SESSION_COLUMNS} FROM sessions"
# No ORDER BY: the partial index on archived_by answers it, however many sessions are archived.
ARCHIVED_BY_SQL = f"{_SELECT_SESSION} WHERE archived_by = ? AND status = 'archived'"
_SELECT_ENTRY = f"SELECT {ENTRY_COLUMNS} FROM entries"
_INSERT_ENTRY = f"INSERT INTO entries ({ENTRY_COLUMNS}) VALUES ({', '.join('?' * len(ENTRY_COLUMNS.split(',')))})"
_DELIVERY_SET = "delivery_context = ?, last_channel = ?, last_to = ?, last_account_id = ?, last_thread_id = ?"


def _delivery_params(delivery: DeliveryContext) -> tuple[Any, ...]:
    return (
        delivery.model_dump_json(),  # the same document session_params stores, made by pydantic-core
        delivery.channel,
        delivery.to,
        delivery.account_id,
        delivery.thread_id,
    )


def _placeholders(count: int) -> str:
    return ",".join("?" * count)


class SqliteStore(SqliteMaintenance):
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    @classmethod
    def at_path(cls, path: str, *, busy_timeout_ms: int = 5000) -> SqliteStore:
        return cls(SqliteDatabase(path, busy_timeout_ms=busy_timeout_ms))

    async def ensure_schema(self) -> None:
        await self._db.open()
        for step in SCHEMA_STEPS:
            await self._db.write(step, alone=True)

    async def close(self) -> None:
        await self._db.close()

    # Agent settings -------------------------------------------------------------------------
    async def get_settings(self, agent_id: str) -> AgentSettings | None:
        def run(conn: Connection) -> AgentSettings | None:
            row = conn.execute("SELECT doc FROM settings WHERE agent_id = ?", (agent_id,)).fetchone()
            return None if row is None else AgentSettings.model_validate_json(row[0])

        return await self._db.read(run, point=True)

    async def save_settings(self, settings: AgentSettings) -> None:
        doc = settings.model_dump_json(exclude_unset=True)  # only what was set: other layers fill the rest
        await self._db.write(
            lambda conn: conn.execute(
                "INSERT INTO settings (agent_id, doc) VALUES (?, ?)"
                " ON CONFLICT (agent_id) DO UPDATE SET doc = excluded.doc",
                (settings.agent_id, doc),
            )
        )

    # Sessions -------------------------------------------------------------------------------
    async def find_active(self, agent_id: str, key: str) -> SessionEntry | None:
        return await self._one_session(
            f"{_SELECT_SESSION} WHERE agent_id = ? AND key = ? AND status = 'active' ORDER BY generation DESC LIMIT 1",
            (agent_id, key),
        )

    async def last_generation(self, agent_id: str, key: str) -> int:
        def run(conn: Connection) -> int:
            row = conn.execute(
                "SELECT MAX(generation) FROM sessions WHERE agent_id = ? AND key = ?", (agent_id, key)
            ).fetchone()
            return int(row[0] or 0)

        # One seek of the (agent_id, key, generation) index: a new chat's path, kept off the reader thread.
        return await self._db.read(run, point=True)

    async def insert_session(self, session: SessionEntry) -> bool:
        params = session_params(session)

        def run(conn: Connection) -> bool:
            try:
                conn.execute(
                    f"INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ({_placeholders(len(params))})",
                    params,
                )
            except sqlite3.IntegrityError:
                return False
            count_agent_bytes(conn, session.id, session.stored_bytes)  # the agent's counter row, at least
            return True

        return await self._db.write(run)

    async def get_session(self, session_id: str) -> SessionEntry | None:
        return await self._one_session(f"{_SELECT_SESSION} WHERE id = ?", (session_id,))

    async def archive_session(
        self, session_id: str, reason: ArchiveReason, at: datetime, by: str | None = None
    ) -> bool:
        return await self._update(
            "UPDATE sessions SET status = 'archived', archived_reason = ?, archived_at = ?, archived_by = ?,"
            " version = version + 1, updated_at = ? WHERE id = ? AND status = 'active'",
            (reason, to_ms(at), by, to_ms(at), session_id),
        )

    async def archived_by(self, event_key: str) -> list[SessionEntry]:
        return await self._many_sessions(ARCHIVED_BY_SQL, (event_key,), point=True)

    async def reactivate_session(
        self, session_id: str, generation: int, at: datetime, opened_by: str | None = None
    ) -> bool:
        try:
            return await self._update(
                "UPDATE sessions SET status = 'active', archived_reason = NULL, archived_at = NULL, archived_by = NULL,"
                " version = version + 1, generation = ?, updated_at = ?, opened_by = coalesce(?, opened_by)"
                " WHERE id = ? AND status = 'archived'",
                (generation, to_ms(at), opened_by, session_id),
            )
        except sqlite3.IntegrityError:
            return False

    async def update_delivery(self, session_id: str, delivery: DeliveryContext, at: datetime) -> None:
        await self._update(
            f"UPDATE sessions SET {_DELIVERY_SET}, updated_at = ?, version = version + 1 WHERE id = ?",
            (*_delivery_params(delivery), to_ms(at), session_id),
        )

    async def set_model(self, session_id: str, model: str | None, at: datetime) -> bool:
        return await self._update(
            "UPDATE sessions SET model = ?, updated_at = ?, version = version + 1 WHERE id = ?",
            (None if model is None else json.dumps(model), to_ms(at), session_id),
        )

    async def change_view(self, session_id: str, change: ViewChange) -> bool:
        view = json.dumps([segment.model_dump(mode="json") for segment in change.view])
        return await self._update(
            "UPDATE sessions SET view = ?, message_count = ?, updated_at = ?, version = version + 1"
            " WHERE id = ? AND version = ?",
            (view, change.message_count, to_ms(change.at), session_id, change.expected_version),
        )

    async def list_sessions(self, query: SessionQuery) -> list[SessionEntry]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (("agent_id", query.agent_id), ("status", query.status), ("key", query.key)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if query.active_since is not None:
            clauses.append("last_activity_at >= ?")
            params.append(to_ms(query.active_since))
        if query.after is not None:
            clauses.append("(last_activity_at < ? OR (last_activity_at = ? AND id < ?))")
            moment = to_ms(query.after[0])
            params.extend((moment, moment, query.after[1]))
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"{_SELECT_SESSION}{where} ORDER BY last_activity_at DESC, id DESC LIMIT ?"
        params.append(query.limit)
        return await self._many_sessions(sql, tuple(params))

    async def count_sessions(self, agent_id: str | None, status: SessionStatus | None) -> int:
        clauses = [f"{column} = ?" for column, value in (("agent_id", agent_id), ("status", status)) if value]
        params = tuple(value for value in (agent_id, status) if value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""

        def run(conn: Connection) -> int:
            return int(conn.execute(f"SELECT COUNT(*) FROM sessions{where}", params).fetchone()[0])

        return await self._db.read(run)

    # Transcript -----------------------------------------------------------------------------
    async def append_entry(self, entry: StoredEntry, update: SessionUpdate, tokens: TokenCount | None = None) -> bool:
        delivery_sql, delivery_params = "", ()
        if update.delivery is not None:
            delivery_sql, delivery_params = f", {_DELIVERY_SET}", _delivery_params(update.delivery)
        active_sql = " AND status = 'active'" if update.require_active else ""
        version_params: tuple[int, ...] = ()
        if update.version is not None:
            active_sql += " AND version = ?"
            version_params = (update.version,)
        session_sql = (
            "UPDATE sessions SET last_seq = ?, updated_at = ?, last_activity_at = ?, version = version + 1,"
            " message_count = message_count + 1, input_tokens = input_tokens + ?,"
            " output_tokens = output_tokens + ?, stored_bytes = stored_bytes + ?"
            f"{delivery_sql} WHERE id = ? AND last_seq = ?{active_sql}"
        )
        at = to_ms(update.at)
        session_params_ = (
            update.seq,
            at,
            at,
            update.input_tokens,
            update.output_tokens,
            update.stored_bytes,
            *delivery_params,
            entry.session_id,
            update.seq - 1,
            *version_params,
        )

        def run(conn: Connection) -> None:
            # On the writer thread: counting there lets the event loop run meanwhile (TokenCount).
            params = entry_params(entry, None if tokens is None else tokens())
            # Atomic through the group commit's savepoint: a failure below undoes the insert.
            try:
                conn.execute(_INSERT_ENTRY, params)
            except sqlite3.IntegrityError as exc:
                if "entries.event_id" in str(exc):
                    raise DuplicateEvent(entry.event_id) from exc
                raise StoreConflict(f"session {entry.session_id} already has entry {entry.seq}") from exc
            if conn.execute(session_sql, session_params_).rowcount != 1:
                raise StoreConflict(f"session {entry.session_id} changed (seq {update.seq - 1} or version)")
            count_agent_bytes(conn, entry.session_id, update.stored_bytes)

        await self._db.write(run, prepare=tokens)  # counted before the transaction, kept for run()
        return update.version is not None

    async def find_entry_by_event(self, event_id: str) -> StoredEntry | None:
        def run(conn: Connection) -> StoredEntry | None:
            row = conn.execute(f"{_SELECT_ENTRY} WHERE event_id = ?", (event_id,)).fetchone()
            return None if row is None else entry_from_row(row)

        return await self._db.read(run, point=True)

    async def read_entries(self, session_id: str, start: int, end: int, limit: int) -> list[StoredEntry]:
        return await self._entries(
            f"{_SELECT_ENTRY} WHERE session_id = ? AND seq BETWEEN ? AND ? ORDER BY seq DESC LIMIT ?",
            (session_id, start, end, limit),
        )

    async def read_pinned(self, session_id: str, start: int, end: int, limit: int) -> list[StoredEntry]:
        return await self._entries(
            f"{_SELECT_ENTRY} WHERE session_id = ? AND seq BETWEEN ? AND ? AND (important = 1 OR role = 'system')"
            " ORDER BY seq DESC LIMIT ?",
            (session_id, start, end, limit),
        )

    async def set_important(self, session_id: str, seq: int, important: bool) -> bool:
        return await self._update(
            "UPDATE entries SET important = ? WHERE session_id = ? AND seq = ?",
            (int(important), session_id, seq),
        )

    # Processed events ------------------------------------------------------------------------
    async def get_outcome(self, key: str) -> RecordedOutcome | None:
        def run(conn: Connection) -> RecordedOutcome | None:
            row = conn.execute("SELECT doc, fingerprint FROM outcomes WHERE event_id = ?", (key,)).fetchone()
            return None if row is None else RecordedOutcome(str(row[0]), row[1])

        return await self._db.read(run, point=True)

    async def save_outcome(self, key: str, outcome: str, at: datetime, fingerprint: str | None) -> None:
        await self._update(
            "INSERT INTO outcomes (event_id, doc, at, fingerprint) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (event_id) DO NOTHING",
            (key, outcome, to_ms(at), fingerprint),
        )

    async def prune_outcomes(self, before: datetime) -> int:
        return await self._db.write(
            lambda conn: conn.execute("DELETE FROM outcomes WHERE at < ?", (to_ms(before),)).rowcount, bulky=True
        )

    # Helpers ---------------------------------------------------------------------------------
    async def _one_session(self, sql: str, params: tuple[Any, ...]) -> SessionEntry | None:
        def run(conn: Connection) -> SessionEntry | None:
            row = conn.execute(sql, params).fetchone()
            return None if row is None else session_from_row(row)

        return await self._db.read(run, point=True)

    async def _many_sessions(self, sql: str, params: tuple[Any, ...], *, point: bool = False) -> list[SessionEntry]:
        def run(conn: Connection) -> list[SessionEntry]:
            return [session_from_row(row) for row in conn.execute(sql, params).fetchall()]

        return await self._db.read(run, point=point)
