"""A store that hands every call to another store: the base of wrappers that change a few calls.

Every method is written out (no attribute pass-through), so mypy checks each against the roles
in worker/stores/base.py, and a role's new method shows here as a missing implementation.
"""

from __future__ import annotations

from datetime import datetime

from schemas import (
    AgentSettings,
    ArchiveReason,
    Checkpoint,
    DeliveryContext,
    SessionEntry,
    SessionStatus,
    Summary,
)
from worker.engine.tokens import TokenCount
from worker.stores.base import (
    DeletedCounts,
    RecordedOutcome,
    SessionQuery,
    SessionScan,
    SessionStore,
    SessionUpdate,
    StoredEntry,
    ViewChange,
)


class DelegatingStore(SessionStore):
    def __init__(self, inner: SessionStore) -> None:
        self.inner = inner

    # StoreAdmin ----------------------------------------------------------------------
    async def ensure_schema(self) -> None:
        await self.inner.ensure_schema()

    async def close(self) -> None:
        await self.inner.close()

    async def check_writable(self, at: datetime) -> None:
        await self.inner.check_writable(at)

    # SettingsRecords -----------------------------------------------------------------
    async def get_settings(self, agent_id: str) -> AgentSettings | None:
        return await self.inner.get_settings(agent_id)

    async def save_settings(self, settings: AgentSettings) -> None:
        await self.inner.save_settings(settings)

    # SessionRecords ------------------------------------------------------------------
    async def find_active(self, agent_id: str, key: str) -> SessionEntry | None:
        return await self.inner.find_active(agent_id, key)

    async def last_generation(self, agent_id: str, key: str) -> int:
        return await self.inner.last_generation(agent_id, key)

    async def insert_session(self, session: SessionEntry) -> bool:
        return await self.inner.insert_session(session)

    async def get_session(self, session_id: str) -> SessionEntry | None:
        return await self.inner.get_session(session_id)

    async def archive_session(
        self, session_id: str, reason: ArchiveReason, at: datetime, by: str | None = None
    ) -> bool:
        return await self.inner.archive_session(session_id, reason, at, by)

    async def archived_by(self, event_key: str) -> list[SessionEntry]:
        return await self.inner.archived_by(event_key)

    async def reactivate_session(
        self, session_id: str, generation: int, at: datetime, opened_by: str | None = None
    ) -> bool:
        return await self.inner.reactivate_session(session_id, generation, at, opened_by)

    async def update_delivery(self, session_id: str, delivery: DeliveryContext, at: datetime) -> None:
        await self.inner.update_delivery(session_id, delivery, at)

    async def set_model(self, session_id: str, model: str | None, at: datetime) -> bool:
        return await self.inner.set_model(session_id, model, at)

    async def change_view(self, session_id: str, change: ViewChange) -> bool:
        return await self.inner.change_view(session_id, change)

    async def list_sessions(self, query: SessionQuery) -> list[SessionEntry]:
        return await self.inner.list_sessions(query)

    async def count_sessions(self, agent_id: str | None, status: SessionStatus | None) -> int:
        return await self.inner.count_sessions(agent_id, status)

    # EntryRecords --------------------------------------------------------------------
    async def append_entry(self, entry: StoredEntry, update: SessionUpdate, tokens: TokenCount | None = None) -> bool:
        return await self.inner.append_entry(entry, update, tokens)

    async def find_entry_by_event(self, event_id: str) -> StoredEntry | None:
        return await self.inner.find_entry_by_event(event_id)

    async def read_entries(self, session_id: str, start: int, end: int, limit: int) -> list[StoredEntry]:
        return await self.inner.read_entries(session_id, start, end, limit)

    async def read_pinned(self, session_id: str, start: int, end: int, limit: int) -> list[StoredEntry]:
        return await self.inner.read_pinned(session_id, start, end, limit)

    async def set_important(self, session_id: str, seq: int, important: bool) -> bool:
        return await self.inner.set_important(session_id, seq, important)

    # CheckpointRecords ---------------------------------------------------------------
    async def insert_checkpoint(self, checkpoint: Checkpoint) -> None:
        await self.inner.insert_checkpoint(checkpoint)

    async def get_checkpoint(self, checkpoint_id: str) -> Checkpoint | None:
        return await self.inner.get_checkpoint(checkpoint_id)

    async def list_checkpoints(self, session_ids: list[str]) -> list[Checkpoint]:
        return await self.inner.list_checkpoints(session_ids)

    async def delete_checkpoint(self, checkpoint_id: str) -> bool:
        return await self.inner.delete_checkpoint(checkpoint_id)

    async def insert_summary(self, summary: Summary) -> None:
        await self.inner.insert_summary(summary)

    async def list_summaries(self, session_id: str) -> list[Summary]:
        return await self.inner.list_summaries(session_id)

    async def summaries_before(self, session_id: str, before_seq: int, limit: int) -> list[Summary]:
        return await self.inner.summaries_before(session_id, before_seq, limit)

    # RotationRecords -----------------------------------------------------------------
    async def count_unsealed(self, key_id: str) -> int:
        return await self.inner.count_unsealed(key_id)

    async def scan_unsealed(self, key_id: str, after: str | None, limit: int) -> tuple[list[StoredEntry], str | None]:
        return await self.inner.scan_unsealed(key_id, after, limit)

    async def reseal_entry(self, entry: StoredEntry, payload: bytes, key_id: str) -> bool:
        return await self.inner.reseal_entry(entry, payload, key_id)

    async def scan_checkpoints(self, after: str | None, limit: int) -> list[Checkpoint]:
        return await self.inner.scan_checkpoints(after, limit)

    async def replace_checkpoint_text(
        self, checkpoint_id: str, name: str, description: str | None, sealed_with: str | None
    ) -> None:
        await self.inner.replace_checkpoint_text(checkpoint_id, name, description, sealed_with)

    async def scan_summaries(self, after: str | None, limit: int) -> list[Summary]:
        return await self.inner.scan_summaries(after, limit)

    async def replace_summary_content(self, summary_id: str, content: str, sealed_with: str | None) -> None:
        await self.inner.replace_summary_content(summary_id, content, sealed_with)

    async def reclaim(self) -> None:
        await self.inner.reclaim()

    # OutcomeRecords ------------------------------------------------------------------
    async def get_outcome(self, key: str) -> RecordedOutcome | None:
        return await self.inner.get_outcome(key)

    async def save_outcome(self, key: str, outcome: str, at: datetime, fingerprint: str | None) -> None:
        await self.inner.save_outcome(key, outcome, at, fingerprint)

    async def prune_outcomes(self, before: datetime) -> int:
        return await self.inner.prune_outcomes(before)

    # AttemptRecords ------------------------------------------------------------------
    async def record_attempt(self, key: str, at: datetime) -> int:
        return await self.inner.record_attempt(key, at)

    async def forget_attempts(self, key: str) -> None:
        await self.inner.forget_attempts(key)

    # RetentionRecords ----------------------------------------------------------------
    async def scan_sessions(self, scan: SessionScan) -> list[SessionEntry]:
        return await self.inner.scan_sessions(scan)

    async def agent_ids(self) -> set[str]:
        return await self.inner.agent_ids()

    async def sessions_with_checkpoints(self, session_ids: list[str]) -> set[str]:
        return await self.inner.sessions_with_checkpoints(session_ids)

    async def delete_sessions(self, session_ids: list[str]) -> DeletedCounts:
        return await self.inner.delete_sessions(session_ids)

    async def agent_stored_bytes(self, agent_id: str) -> int:
        return await self.inner.agent_stored_bytes(agent_id)

    async def count_records(self, session_ids: list[str]) -> DeletedCounts:
        return await self.inner.count_records(session_ids)

    async def entries_after(self, session_id: str, seq: int, *, delete: bool) -> int:
        return await self.inner.entries_after(session_id, seq, delete=delete)
