"""The session engine and its adapters. `create_session_manager` is the library entry point."""

from worker.engine.scope import ChatAddress
from worker.errors import (
    CheckpointNotFound,
    ContentTooLarge,
    InvalidArgument,
    InvalidResetTime,
    InvalidScope,
    InvalidTimeZone,
    SessionNotActive,
    SessionNotFound,
    SessionsError,
    StoreConflict,
    StoreUnavailable,
)
from worker.sessions.factory import create_session_manager
from worker.sessions.manager import SessionManager
from worker.sessions.options import ManagerOptions

__all__ = [
    "ChatAddress",
    "CheckpointNotFound",
    "ContentTooLarge",
    "InvalidArgument",
    "InvalidResetTime",
    "InvalidScope",
    "InvalidTimeZone",
    "ManagerOptions",
    "SessionManager",
    "SessionNotActive",
    "SessionNotFound",
    "SessionsError",
    "StoreConflict",
    "StoreUnavailable",
    "create_session_manager",
]
