"""Typed errors with messages meant for the person who caused them."""

from __future__ import annotations


class SessionsError(Exception):
    """Base of every error the session engine raises on purpose."""

    code = "error"


class InvalidArgument(SessionsError, ValueError):
    code = "invalid-argument"


class InvalidScope(InvalidArgument):
    code = "invalid-scope"


class InvalidResetTime(InvalidArgument):
    code = "invalid-reset-time"


class InvalidTimeZone(InvalidArgument):
    code = "invalid-time-zone"


class ContentTooLarge(InvalidArgument):
    code = "content-too-large"


class SessionNotFound(SessionsError, LookupError):
    code = "session-not-found"


class SessionNotActive(SessionsError):
    code = "session-not-active"


class CheckpointNotFound(SessionsError, LookupError):
    code = "checkpoint-not-found"


class EncryptionError(SessionsError):
    """A record cannot be sealed or opened: missing or wrong key, tampering, or a moved record."""

    code = "encryption"


class StoreConflict(SessionsError):
    """A concurrent writer won a race; the caller re-reads and retries."""

    code = "store-conflict"


class StoreUnavailable(SessionsError):
    """The database could not be reached or answered with a transient error."""

    code = "store-unavailable"


class StoreOpenFailed(SessionsError):
    """The store cannot be opened at start-up; the message names where and what to do."""

    code = "store-open-failed"
