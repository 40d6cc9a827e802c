"""Why a SQLite store cannot be opened, in one line that names the file and what to do.

Checked before connecting, since SQLite itself says little ("unable to open database file") or
nothing at all (a truncated file opens, and fails later on the first page it lacks).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from worker.errors import StoreOpenFailed

_MAGIC = b"SQLite format 3\x00"
_HEADER = 100
_LOG_HEADER = 32  # a write-ahead log's own header: a log no larger holds no frames
_RESTORE = "restore it from a backup, or move it away to start with an empty store"


def _failed(path: str, problem: str, advice: str) -> StoreOpenFailed:
    return StoreOpenFailed(f"cannot open the SQLite store {path}: {problem}; {advice} (SESSIONS_DB_PATH)")


def check_file(path: str) -> None:
    """The nearest existing ancestor is a directory, and the file, if there is one, is a whole
    SQLite database file as far as its header tells."""
    target = Path(path)
    for ancestor in target.parents:
        if ancestor.exists():
            if not ancestor.is_dir():
                raise _failed(path, f"{ancestor} is a file, not a directory", "choose a path inside a directory")
            break
    if target.is_dir():
        raise _failed(path, "it is a directory", "give the path of a file inside it")
    if not target.exists() or target.stat().st_size == 0:
        return  # SQLite creates it
    size = target.stat().st_size
    with target.open("rb") as raw:
        header = raw.read(_HEADER)
    if len(header) < _HEADER or not header.startswith(_MAGIC):
        raise _failed(path, "it is not a SQLite database, or its header is damaged", _RESTORE)
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    # The header's page count is valid when its change counter matches "version-valid-for". With a
    # write-ahead log beside the file the count may run ahead of the file: a checkpoint (another
    # process's, or one a crash cut short) writes page 1 before the pages that extend the file,
    # and SQLite takes the missing pages from the log.
    if header[24:28] == header[92:96] and size < pages * page_size and not _has_log(target):
        raise _failed(path, f"it is truncated ({size} of {pages * page_size} bytes)", _RESTORE)


def _has_log(database: Path) -> bool:
    """A write-ahead log with frames in it beside the database."""
    log = database.with_name(database.name + "-wal")
    try:
        return log.stat().st_size > _LOG_HEADER
    except FileNotFoundError:
        return False


def open_failure(path: str, exc: BaseException) -> StoreOpenFailed:
    """What SQLite (or the file system) said when the store was opened, as one line."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = None if code is None else code & 0xFF
    parent = Path(path).parent
    if isinstance(exc, PermissionError) or primary in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM):
        return _failed(path, str(exc), f"check that {parent} exists and that this user may read and write there")
    if primary == sqlite3.SQLITE_READONLY:
        return _failed(path, str(exc), f"make the file and {parent} writable for this user")
    if primary == sqlite3.SQLITE_FULL:
        return _failed(path, str(exc), f"free space on the disk holding {parent}")
    if primary in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT):
        return _failed(path, f"the file is damaged ({exc})", _RESTORE)
    return _failed(path, str(exc), "check the path, its permissions and the disk")
