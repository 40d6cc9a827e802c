"""The contract every store keeps. Domain rules live in the engine; stores only store, atomically."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from schemas import (
    AgentSettings,
    ArchiveReason,
    Checkpoint,
    DeliveryContext,
    Role,
    Segment,
    SessionEntry,
    SessionStatus,
    Summary,
)
from worker.engine.tokens import TokenCount


class DuplicateEvent(Exception):
    """An entry with this event id is already stored; the append had no effect."""


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """A transcript entry as stored: clear metadata plus the (possibly sealed) payload."""

    session_id: str
    seq: int
    event_id: str
    role: Role
    timestamp: datetime
    token_count: int
    important: bool
    input_tokens: int
    output_tokens: int
    has_usage: bool
    delivery: DeliveryContext | None
    payload: bytes
    key_id: str | None
    # What the event that wrote it meant (worker.engine.idempotency.fingerprint); None for older rows.
    fingerprint: str | None = None


@dataclass(frozen=True, slots=True)
class RecordedOutcome:
    """A processed event's record: its outcome document and what the event meant."""

    doc: str
    fingerprint: str | None


@dataclass(frozen=True, slots=True)
class SessionUpdate:
    """What one appended entry changes on its session; applied only if last_seq == seq - 1."""

    seq: int
    at: datetime
    # The session version the caller saw; None skips the check (e.g. appends from the CLI).
    version: int | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    stored_bytes: int = 0  # the entry's payload as stored
    # The session's agent, for its byte counter; None: the store looks it up.
    agent_id: str | None = None
    delivery: DeliveryContext | None = None
    # Only while the session is active: a session archived by another process fails the guard.
    # SQLite checks this atomically with the insert. MongoDB inserts the entry first, so an append
    # racing an archive in another process completes into the archived session (still stored once).
    require_active: bool = True


@dataclass(frozen=True, slots=True)
class SessionQuery:
    agent_id: str | None = None
    status: SessionStatus | None = None
    active_since: datetime | None = None
    key: str | None = None
    limit: int = 50
    # Keyset cursor: sessions strictly after (last_activity_at, id) in newest-first order.
    after: tuple[datetime, str] | None = None


@dataclass(frozen=True, slots=True)
class SessionScan:
    """Old sessions for cleanup, retention and reset sweeps: `field` < `before`, ascending."""

    before: datetime
    field: Literal["last_activity_at", "created_at"] = "last_activity_at"
    agent_id: str | None = None
    status: SessionStatus | None = None
    limit: int = 500
    # Keyset cursor: strictly after (field value, id) in oldest-first order.
    after: tuple[datetime, str] | None = None


@dataclass(frozen=True, slots=True)
class DeletedCounts:
    sessions: int = 0
    entries: int = 0
    checkpoints: int = 0
    summaries: int = 0


@dataclass(frozen=True, slots=True)
class ViewChange:
    view: tuple[Segment, ...]
    message_count: int
    at: datetime
    expected_version: int = field(default=0)


# The roles a store serves. Callers depend on the role (or the few roles) they use; a store
# implements them all (SessionStore). Every method is atomic on its own.


class StoreAdmin(Protocol):
    """Opening, closing and the health probe."""

    async def ensure_schema(self) -> None:
        """Create tables, collections and indexes. Idempotent; called explicitly, never implicitly."""

    async def close(self) -> None: ...
    async def check_writable(self, at: datetime) -> None:
        """A real write, so that a full disk or a missing primary shows; raises StoreUnavailable."""


class SettingsRecords(Protocol):
    """Agent settings stored by admins."""

    async def get_settings(self, agent_id: str) -> AgentSettings | None: ...
    async def save_settings(self, settings: AgentSettings) -> None: ...


class SessionRecords(Protocol):
    """Sessions and the slots they occupy."""

    async def find_active(self, agent_id: str, key: str) -> SessionEntry | None: ...
    async def last_generation(self, agent_id: str, key: str) -> int: ...
    async def insert_session(self, session: SessionEntry) -> bool:
        """False when another session already holds this (agent, key, generation)."""

    async def get_session(self, session_id: str) -> SessionEntry | None: ...
    async def archive_session(
        self, session_id: str, reason: ArchiveReason, at: datetime, by: str | None = None
    ) -> bool:
        """Active -> archived (`by`: the event that did it, if one did); False if it was not active."""

    async def archived_by(self, event_key: str) -> list[SessionEntry]:
        """The sessions archived by that event, still archived (an index lookup: few or none)."""

    async def reactivate_session(
        self, session_id: str, generation: int, at: datetime, opened_by: str | None = None
    ) -> bool:
        """Archived -> active under a new generation (`opened_by`: the event that did it, if one
        did); False if that generation is taken."""

    async def update_delivery(self, session_id: str, delivery: DeliveryContext, at: datetime) -> None: ...
    async def set_model(self, session_id: str, model: str | None, at: datetime) -> bool:
        """Set (None: clear) the session's model override; False if there is no such session."""

    async def change_view(self, session_id: str, change: ViewChange) -> bool:
        """Replace the visible ranges; False if the session changed since `expected_version`."""

    async def list_sessions(self, query: SessionQuery) -> list[SessionEntry]: ...
    async def count_sessions(self, agent_id: str | None, status: SessionStatus | None) -> int: ...


class EntryRecords(Protocol):
    """Transcript entries."""

    async def append_entry(self, entry: StoredEntry, update: SessionUpdate, tokens: TokenCount | None = None) -> bool:
        """Store one entry with seq == session.last_seq + 1 and apply `update` (its bytes counted
        in the session's and its agent's stored bytes).

        `tokens`, when given, is the entry's token count, made while the entry is written (its
        `token_count` is then not read): a store with a thread for its blocking work counts there.

        Returns True if the session was at `update.version` and now is at version + 1 with exactly
        `update` applied; False if the entry is stored but the session had to be settled some
        other way (re-read it). Raises DuplicateEvent if the event id is stored already (the entry
        exists and is counted), StoreConflict if the sequence number or version was taken by a
        concurrent writer (nothing stored).
        """

    async def find_entry_by_event(self, event_id: str) -> StoredEntry | None: ...
    async def read_entries(self, session_id: str, start: int, end: int, limit: int) -> list[StoredEntry]:
        """Entries with start <= seq <= end, newest first, at most `limit`."""

    async def read_pinned(self, session_id: str, start: int, end: int, limit: int) -> list[StoredEntry]:
        """Like read_entries, but only system entries and entries marked important."""

    async def set_important(self, session_id: str, seq: int, important: bool) -> bool: ...


class CheckpointRecords(Protocol):
    """Checkpoints and summaries of sessions."""

    async def insert_checkpoint(self, checkpoint: Checkpoint) -> None: ...
    async def get_checkpoint(self, checkpoint_id: str) -> Checkpoint | None: ...
    async def list_checkpoints(self, session_ids: list[str]) -> list[Checkpoint]: ...
    async def delete_checkpoint(self, checkpoint_id: str) -> bool: ...
    async def insert_summary(self, summary: Summary) -> None: ...
    async def list_summaries(self, session_id: str) -> list[Summary]: ...
    async def summaries_before(self, session_id: str, before_seq: int, limit: int) -> list[Summary]:
        """Summaries ending before `before_seq`, the latest-ending first."""


class RotationRecords(Protocol):
    """Key rotation: records not sealed by `key_id` (plaintext included), and compare-and-set reseals."""

    async def count_unsealed(self, key_id: str) -> int: ...
    async def scan_unsealed(self, key_id: str, after: str | None, limit: int) -> tuple[list[StoredEntry], str | None]:
        """Entries whose key id is not `key_id`, after the opaque cursor; returns the next cursor."""

    async def reseal_entry(self, entry: StoredEntry, payload: bytes, key_id: str) -> bool:
        """Replace the payload if the entry is still sealed as `entry.key_id` says (the stored
        bytes of its session and agent follow the new payload's size)."""

    async def scan_checkpoints(self, after: str | None, limit: int) -> list[Checkpoint]: ...
    async def replace_checkpoint_text(
        self, checkpoint_id: str, name: str, description: str | None, sealed_with: str | None
    ) -> None: ...
    async def scan_summaries(self, after: str | None, limit: int) -> list[Summary]: ...
    async def replace_summary_content(self, summary_id: str, content: str, sealed_with: str | None) -> None: ...
    async def reclaim(self) -> None:
        """Flush rewritten records out of logs and free space, where the backend allows it."""


class OutcomeRecords(Protocol):
    """Processed events: the outcome (replies to re-publish) of each applied event, by its key."""

    async def get_outcome(self, key: str) -> RecordedOutcome | None: ...
    async def save_outcome(self, key: str, outcome: str, at: datetime, fingerprint: str | None) -> None:
        """Record once; a second save of the same key keeps the first."""

    async def prune_outcomes(self, before: datetime) -> int: ...


class AttemptRecords(Protocol):
    """Delivery attempts of redelivered events (poison detection)."""

    async def record_attempt(self, key: str, at: datetime) -> int:
        """Count one more attempt at the event `key`, durably, and return the total so far."""

    async def forget_attempts(self, key: str) -> None: ...


class RetentionRecords(Protocol):
    """Cleanup, retention and reset sweeps, and the store budget."""

    async def scan_sessions(self, scan: SessionScan) -> list[SessionEntry]:
        """Sessions with `scan.field` before `scan.before`, oldest first, keyset-paged (by index)."""

    async def agent_ids(self) -> set[str]:
        """Every agent that has sessions or stored settings."""

    async def sessions_with_checkpoints(self, session_ids: list[str]) -> set[str]: ...
    async def delete_sessions(self, session_ids: list[str]) -> DeletedCounts: ...
    async def agent_stored_bytes(self, agent_id: str) -> int:
        """The transcript bytes (as stored) of the agent's sessions: a counter kept by every write
        that changes them, read in one lookup."""

    async def count_records(self, session_ids: list[str]) -> DeletedCounts:
        """What delete_sessions would delete, deleting nothing."""

    async def entries_after(self, session_id: str, seq: int, *, delete: bool) -> int:
        """Count (and with `delete`, delete) the session's entries numbered above `seq`."""


# The few callers that need two or three roles name them together here.


class CheckpointStore(SessionRecords, CheckpointRecords, Protocol):
    """Checkpoints: saved and restored against their sessions."""


class HistoryStore(EntryRecords, CheckpointRecords, Protocol):
    """Context windows: entries, pinned ones, and the summaries that stand in for older ones."""


class RetentionStore(SessionRecords, CheckpointRecords, RetentionRecords, Protocol):
    """What cleanup and retention read and delete: sessions, their checkpoints, the budget."""


class SweepStore(RetentionStore, OutcomeRecords, Protocol):
    """The scheduler's sweeps: retention's reads, and the outcomes that say a warning was given."""


class SessionStore(
    StoreAdmin,
    SettingsRecords,
    SessionRecords,
    EntryRecords,
    CheckpointRecords,
    RotationRecords,
    OutcomeRecords,
    AttemptRecords,
    RetentionRecords,
    Protocol,
):
    """Every role: what a store implements, and what the library's manager holds."""
