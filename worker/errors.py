"""Typed errors with messages meant for the person who caused them."""

from __future__ import annotations


class SessionsError(Exception):
    """Base of every error the session engine raises on purpose."""

    code = "error"


class RequestError(SessionsError):
    """The request cannot be done as asked; the message tells the person who asked what to change."""

    code = "request"


class InvalidArgument(RequestError, ValueError):
    code = "invalid-argument"


class InvalidScope(InvalidArgument):
    code = "invalid-scope"


class InvalidResetTime(InvalidArgument):
    code = "invalid-reset-time"


class InvalidTimeZone(InvalidArgument):
    code = "invalid-time-zone"


class ContentTooLarge(InvalidArgument):
    code = "content-too-large"


class EventIdConflict(SessionsError):
    """An event id (within its chat or session) came back carrying something else."""

    code = "event-id-conflict"


class NotFound(RequestError, LookupError):
    """What the request names does not exist (the CLI exits 4)."""

    code = "not-found"


class SessionNotFound(NotFound):
    code = "session-not-found"


class SessionNotActive(RequestError):
    code = "session-not-active"


class CheckpointNotFound(NotFound):
    code = "checkpoint-not-found"


class EncryptionError(SessionsError):
    """A record cannot be sealed or opened: missing or wrong key, tampering, or a moved record."""

    code = "encryption"


class StartupError(SessionsError):
    """The service cannot start as configured; the message says what to change."""

    code = "startup"


class StoreConflict(SessionsError):
    """A concurrent writer won a race; the caller re-reads and retries."""

    code = "store-conflict"


class StoreUnavailable(SessionsError):
    """The database could not be reached or answered with a transient error."""

    code = "store-unavailable"
