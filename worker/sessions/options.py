"""The options of `create_session_manager` (snake_case), checked together as one pydantic model."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from schemas import AgentSettings, CacheSizes, ContextDefaults, RedactionPolicy, ResetPolicy, RetentionPolicy, Scope
from worker.config import Settings, Storage
from worker.engine.tokens import DEFAULT_ENCODING
from worker.stores.kinds import missing_options


class ManagerOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    scope: Scope = "per-channel-peer"
    daily_reset_hour: int | None = Field(default=None, ge=0, le=23)
    idle_reset_minutes: int | None = Field(default=None, ge=1)
    time_zone: str = "UTC"
    reset_policy: ResetPolicy | None = None
    retention: RetentionPolicy = RetentionPolicy()
    context: ContextDefaults = ContextDefaults()
    # Secrets replaced before storage for agents without stored settings (on unless disabled).
    redaction: RedactionPolicy = RedactionPolicy()
    admins: tuple[str, ...] = ()
    default_agent: str = "main"
    storage: Storage = "sqlite"
    db_path: str = "./sessions.db"
    mongodb_url: str | None = None
    mongodb_database: str = "sessions"
    encrypt_transcripts: bool = False
    # One key (`encryption_key`), or several as "id:key,id:key" (first seals, all open), or a file.
    encryption_key: str | None = Field(default=None, repr=False)
    encryption_keys: str | None = Field(default=None, repr=False)
    encryption_key_file: str | None = None
    # A key file its group or others may read is refused unless this is set (see read_key_ring).
    allow_shared_key_file: bool = False
    allow_plaintext_records: bool = True
    token_encoding: str = DEFAULT_ENCODING
    max_content_bytes: int = Field(default=2 * 1024 * 1024, ge=1)
    # The per-chat caches' sizes, which bound this process's memory however many chats there are.
    caches: CacheSizes = CacheSizes()
    # The agent configuration file (worker/sessions/agent_file.py): defaults and a section per agent.
    config: str | None = None

    @model_validator(mode="after")
    def _check(self) -> ManagerOptions:
        if (problem := missing_options(self.storage, self)) is not None:
            raise ValueError(problem)
        if self.encrypt_transcripts and not (self.encryption_key or self.encryption_keys or self.encryption_key_file):
            raise ValueError("encrypt_transcripts needs encryption_key (or encryption_keys / encryption_key_file)")
        if self.reset_policy is not None and (self.daily_reset_hour is not None or self.idle_reset_minutes is not None):
            raise ValueError("give either reset_policy or daily_reset_hour/idle_reset_minutes, not both")
        return self

    def reset(self) -> ResetPolicy:
        """The full reset policy, derived from the two shorthand options (daily_reset_hour,
        idle_reset_minutes) if needed."""
        if self.reset_policy is not None:
            return self.reset_policy
        daily = self.daily_reset_hour is not None
        idle = self.idle_reset_minutes is not None
        mode = "daily+idle" if daily and idle else "daily" if daily else "idle" if idle else "off"
        return ResetPolicy(
            mode=mode,
            daily_at=f"{self.daily_reset_hour or 0:02d}:00",
            time_zone=self.time_zone,
            idle_minutes=self.idle_reset_minutes or 60,
        )

    def agent_defaults(self) -> AgentSettings:
        return AgentSettings(
            agent_id=self.default_agent,
            scope=self.scope,
            reset=self.reset(),
            retention=self.retention,
            encrypt_transcripts=self.encrypt_transcripts,
            context=self.context,
            redaction=self.redaction,
            admins=self.admins,
        )


def options_from_settings(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for create_session_manager from the service settings: every option a
    setting of the same name holds (secrets unwrapped), the retention policy from the
    `retention_*` settings, and the few options the settings spell otherwise."""
    options: dict[str, Any] = {
        name: _plain(getattr(settings, name)) for name in ManagerOptions.model_fields if name in Settings.model_fields
    }
    retention = {
        name: getattr(settings, f"retention_{name}")
        for name in RetentionPolicy.model_fields
        if f"retention_{name}" in Settings.model_fields
    }
    reset = ResetPolicy(
        mode=settings.reset_mode,
        daily_at=settings.reset_time,
        time_zone=settings.reset_time_zone,
        idle_minutes=settings.idle_minutes,
    )
    return options | {
        "retention": RetentionPolicy(**retention),
        "reset_policy": reset,
        "redaction": RedactionPolicy(enabled=settings.redaction, patterns=settings.redaction_patterns),
        "admins": settings.admin_list(),
        "default_agent": settings.agent,
        "caches": CacheSizes(sessions=settings.session_cache_size, ciphers=settings.cipher_cache_size),
    }


def _plain(value: object) -> object:
    return value.get_secret_value() if isinstance(value, SecretStr) else value
