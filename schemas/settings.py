"""Per-agent settings (scope, reset policy, retention, context defaults, redaction, admins), and the
sizes of a process's per-chat caches."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from schemas.base import WireModel
from schemas.delivery import normalize_channel

Scope = Literal["main", "per-peer", "per-channel-peer", "per-account-channel-peer"]
SCOPES: tuple[Scope, ...] = ("main", "per-peer", "per-channel-peer", "per-account-channel-peer")
ResetMode = Literal["off", "daily", "idle", "daily+idle"]
RetentionMode = Literal["enforce", "warn", "off"]
ContextStrategy = Literal["recent", "smart", "summarize"]

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _canonical_account(account: str) -> str:
    channel, _, user = account.partition(":")
    return f"{normalize_channel(channel)}:{user.strip()}"


def parse_duration(text: str) -> timedelta:
    """'90d', '30m', '12h', '2w', '45s' -> timedelta; anything else is a ValueError."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"invalid duration {text!r}: use a number and one of s, m, h, d, w (e.g. 30d)")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def check_time_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as Europe/Berlin") from exc
    return name


def check_hhmm(text: str) -> str:
    if not _HHMM.match(text):
        raise ValueError(f"invalid time {text!r}: use HH:MM on a 24-hour clock, e.g. 04:00")
    return text


ResetChatType = Literal["direct", "group", "thread"]


class ResetOverride(WireModel):
    """Part of a reset policy that differs for one chat type or channel; unset fields inherit."""

    mode: ResetMode | None = None
    daily_at: str | None = None
    time_zone: str | None = None
    idle_minutes: int | None = Field(default=None, ge=1, le=525_600)

    @field_validator("daily_at")
    @classmethod
    def _check_daily(cls, value: str | None) -> str | None:
        return None if value is None else check_hhmm(value)

    @field_validator("time_zone")
    @classmethod
    def _check_zone(cls, value: str | None) -> str | None:
        return None if value is None else check_time_zone(value)


class ResetPolicy(WireModel):
    mode: ResetMode = "off"
    daily_at: str = "04:00"
    time_zone: str = "UTC"
    idle_minutes: int = Field(default=60, ge=1, le=525_600)
    # Overrides for a chat type (a thread is a message with a thread id) and for a channel; the
    # channel's win over the type's, both over the policy above.
    by_type: dict[ResetChatType, ResetOverride] = Field(default_factory=dict)
    by_channel: dict[str, ResetOverride] = Field(default_factory=dict)

    def for_chat(self, chat_type: ResetChatType, channel: str | None) -> ResetPolicy:
        """The policy that applies to one chat."""
        layers = [self.by_type.get(chat_type), self.by_channel.get(normalize_channel(channel) or "")]
        changes = {
            k: v for layer in layers if layer is not None for k, v in layer.model_dump().items() if v is not None
        }
        if not changes:
            return self
        return self.model_copy(update={**changes, "by_type": {}, "by_channel": {}})

    def variants(self) -> list[ResetPolicy]:
        """This policy and every override's: the scheduler sweeps for the most eager of them."""
        keys: list[tuple[ResetChatType, str | None]] = [(t, None) for t in self.by_type]
        keys += [("direct", c) for c in self.by_channel]
        return [self, *(self.for_chat(chat_type, channel) for chat_type, channel in keys)]

    @field_validator("by_channel")
    @classmethod
    def _canonical_channels(cls, value: dict[str, ResetOverride]) -> dict[str, ResetOverride]:
        return {normalize_channel(name) or name: policy for name, policy in value.items()}

    @field_validator("daily_at")
    @classmethod
    def _check_daily(cls, value: str) -> str:
        return check_hhmm(value)

    @field_validator("time_zone")
    @classmethod
    def _check_zone(cls, value: str) -> str:
        return check_time_zone(value)

    @property
    def daily(self) -> bool:
        return self.mode in ("daily", "daily+idle")

    @property
    def idle(self) -> bool:
        return self.mode in ("idle", "daily+idle")


class RetentionPolicy(WireModel):
    max_age: str = "90d"
    max_inactive: str = "30d"
    keep_minimum: int = Field(default=10, ge=0)
    mode: RetentionMode = "enforce"
    # A store budget: over `max_store_bytes` of transcript (as stored), the longest-inactive
    # sessions go until the agent is under `store_high_water` of it.
    max_store_bytes: int | None = Field(default=None, ge=1)
    store_high_water: float = Field(default=0.9, gt=0, le=1)

    @property
    def budget_target(self) -> int | None:
        return None if self.max_store_bytes is None else int(self.max_store_bytes * self.store_high_water)

    @field_validator("max_age", "max_inactive")
    @classmethod
    def _check_duration(cls, value: str) -> str:
        parse_duration(value)
        return value


class ContextDefaults(WireModel):
    max_tokens: int = Field(default=100_000, ge=1)
    strategy: ContextStrategy = "recent"


MAX_PATTERN_CHARS = 500
MAX_PATTERNS = 50
_KIND = r"^[a-z0-9][a-z0-9-]{0,39}$"


class RedactionPattern(WireModel):
    """An agent's own secret: matches of `pattern` are replaced by `[redacted:<kind>]`."""

    kind: str = Field(pattern=_KIND, description="lowercase letters, digits and dashes, e.g. employee-id")
    pattern: str = Field(min_length=1, max_length=MAX_PATTERN_CHARS, description="a Python regular expression")

    @field_validator("pattern")
    @classmethod
    def _check_pattern(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"pattern does not compile: {exc}") from None
        if compiled.search("") is not None:
            raise ValueError("pattern matches the empty text: it must match at least one character")
        return value


class RedactionPolicy(WireModel):
    """Secrets replaced before anything is stored: the built-in detectors plus `patterns`."""

    enabled: bool = True
    patterns: tuple[RedactionPattern, ...] = Field(default=(), max_length=MAX_PATTERNS)


# The per-chat caches' default sizes. A cached session costs about 7 KB, so the session cache's
# default holds a worker at about 70 MB above its base however many chats write to it.
SESSION_CACHE_SIZE = 10_000
CIPHER_CACHE_SIZE = 4_096


class CacheSizes(WireModel):
    """How many entries each of a process's per-chat caches holds at most (least recently used
    go first): what bounds its memory, whatever the number of chats. A miss costs a store read
    (sessions) or a key derivation (ciphers), not a wrong answer."""

    sessions: int = Field(default=SESSION_CACHE_SIZE, ge=1)  # session documents, one per chat written lately
    ciphers: int = Field(default=CIPHER_CACHE_SIZE, ge=1)  # per-session AES-GCM keys (encryption on)


class AgentSettings(WireModel):
    agent_id: str = "main"
    scope: Scope = "per-channel-peer"
    reset: ResetPolicy = ResetPolicy()
    retention: RetentionPolicy = RetentionPolicy()
    encrypt_transcripts: bool = False
    context: ContextDefaults = ContextDefaults()
    redaction: RedactionPolicy = RedactionPolicy()
    admins: tuple[str, ...] = ()
    # Models a session may be switched to (`/session model`); empty: any.
    allowed_models: tuple[str, ...] = ()
    # One person's accounts on several channels: {"alice": ("telegram:111", "discord:222")}. Under
    # per-peer scope the linked accounts share one session.
    identity_links: dict[str, tuple[str, ...]] = Field(default_factory=dict)

    def identity_of(self, channel: str | None, person: str | None) -> str | None:
        """The linked identity of a channel's user, if the agent links it."""
        if not self.identity_links or person is None:
            return None
        account = f"{channel}:{person}"
        return next((name for name, accounts in self.identity_links.items() if account in accounts), None)

    @field_validator("identity_links")
    @classmethod
    def _check_links(cls, links: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        seen: dict[str, str] = {}
        for name, accounts in links.items():
            for account in accounts:
                channel, _, user = account.partition(":")
                if not channel.strip() or not user.strip():
                    raise ValueError(f"identity {name!r}: {account!r} is not 'channel:user_id'")
                if seen.setdefault(account, name) != name:
                    raise ValueError(f"{account!r} is linked to both {seen[account]!r} and {name!r}")
        return {name: tuple(_canonical_account(a) for a in accounts) for name, accounts in links.items()}

    @model_validator(mode="after")
    def _check_agent(self) -> AgentSettings:
        if not self.agent_id.strip():
            raise ValueError("agent_id must not be empty")
        return self
