"""The session engine and its adapters. `create_session_manager` is the library entry point."""

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
from worker.factory import create_session_manager
from worker.manager import SessionManager
from worker.options import ManagerOptions
from worker.scope import ChatAddress

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
