"""Start-up failures an operator can fix, as one line naming the store (its password masked) and
what to do; the CLI prints it and exits with status 2 instead of a traceback."""

from __future__ import annotations

from yarl import URL

from worker.config import Settings
from worker.errors import EncryptionError, InvalidArgument, StoreOpenFailed, StoreUnavailable


def masked(url: str) -> str:
    """`url` with its password replaced by ***, each of a comma-separated list."""
    parts = []
    for part in url.split(","):
        try:
            parsed = URL(part.strip())
        except ValueError:
            parts.append("<unparsable URL>")
            continue
        parts.append(str(parsed.with_password("***")) if parsed.password else str(parsed))
    return ",".join(parts)


def _one_line(text: str, limit: int = 400) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def startup_failure(settings: Settings, exc: BaseException) -> str | None:
    """The line to print for a failure to open the session store, None for anything else."""
    if isinstance(exc, StoreOpenFailed):
        return _one_line(str(exc))
    if isinstance(exc, EncryptionError):
        return _one_line(f"encryption keys: {exc}")
    if isinstance(exc, InvalidArgument):
        return _one_line(str(exc))
    if not isinstance(exc, StoreUnavailable):
        return None
    if settings.storage == "mongodb":
        url = masked(settings.mongodb_url.get_secret_value()) if settings.mongodb_url else "(no MONGODB_URL)"
        advice = "check MONGODB_URL, the network, and that the deployment has a primary"
        return _one_line(f"cannot use MongoDB at {url}: {exc}", 300) + f"; {advice}"
    advice = "check the disk (space, permissions, a read-only mount) and SESSIONS_DB_PATH"
    return _one_line(f"cannot use the SQLite store {settings.db_path}: {exc}", 300) + f"; {advice}"
