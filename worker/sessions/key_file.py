"""Reading the key ring from its file, refusing one that others may read."""

from __future__ import annotations

from pathlib import Path

from worker.engine.crypto import KeyRing
from worker.errors import EncryptionError


def read_key_ring(path: Path, *, allow_shared: bool = False) -> KeyRing:
    """The keys in `path`; a file its group or others may read or write is refused unless
    `allow_shared` (its directory or volume keeps others out: a compose or Kubernetes secret)."""
    try:
        mode = path.stat().st_mode
        if mode & 0o077 and not allow_shared:
            raise EncryptionError(
                f"the encryption key file {path} is open to its group or others (mode {mode & 0o777:o}):"
                " run `chmod 600` on it, or set SESSIONS_ALLOW_SHARED_KEY_FILE=true if its directory or"
                " volume keeps other users out"
            )
        return KeyRing.parse(path.read_text())
    except OSError as exc:
        raise EncryptionError(f"cannot read the encryption key file {path}: {exc.strerror}") from exc
