"""Event and document contracts, routing keys and queue names. Pure data: no I/O here."""

from schemas.base import WireModel
from schemas.checkpoint import Checkpoint
from schemas.delivery import ChatType, DeliveryContext, Origin
from schemas.session import ArchiveReason, ModelConfig, Segment, SessionEntry, SessionPage, SessionStatus
from schemas.settings import (
    SCOPES,
    AgentSettings,
    CacheSizes,
    ContextDefaults,
    ContextStrategy,
    RedactionPattern,
    RedactionPolicy,
    ResetMode,
    ResetPolicy,
    RetentionPolicy,
    Scope,
    parse_duration,
)
from schemas.summary import Summary
from schemas.transcript import ROLES, Role, TranscriptEntry, Usage

__all__ = [
    "ROLES",
    "SCOPES",
    "AgentSettings",
    "ArchiveReason",
    "CacheSizes",
    "ChatType",
    "Checkpoint",
    "ContextDefaults",
    "ContextStrategy",
    "DeliveryContext",
    "ModelConfig",
    "Origin",
    "RedactionPattern",
    "RedactionPolicy",
    "ResetMode",
    "ResetPolicy",
    "RetentionPolicy",
    "Role",
    "Scope",
    "Segment",
    "SessionEntry",
    "SessionPage",
    "SessionStatus",
    "Summary",
    "TranscriptEntry",
    "Usage",
    "WireModel",
    "parse_duration",
]
