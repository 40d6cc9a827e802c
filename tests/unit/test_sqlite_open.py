"""The store file check before opening: a truncated file is refused, a checkpoint cut short is not.

A checkpoint (another process's, or one a crash interrupted) writes page 1, with the new page
count, before the pages that extend the file; SQLite takes the missing pages from the write-ahead
log, so such a file is whole and must open.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from worker.errors import StoreOpenFailed
from worker.stores.sqlite_open import check_file

_WAL_HEADER, _FRAME_HEADER = 32, 24


def _logged_database(path: Path, rows: int) -> sqlite3.Connection:
    """A WAL database whose rows are all still in the log (no checkpoint), its connection open."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE filler (x BLOB)")
    conn.execute("INSERT INTO filler VALUES (zeroblob(10))")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the file holds the table; the log is empty
    conn.executemany("INSERT INTO filler VALUES (?)", [(bytes([n % 256]) * 2000,) for n in range(rows)])
    return conn


def _newest_page_one(wal: bytes, page_size: int) -> bytes:
    frame = _FRAME_HEADER + page_size
    pages = [
        wal[at + _FRAME_HEADER : at + frame]
        for at in range(_WAL_HEADER, len(wal) - frame + 1, frame)
        if int.from_bytes(wal[at : at + 4], "big") == 1
    ]
    assert pages, "the log holds no copy of page 1"
    return pages[-1]


def _crash_image(source: Path, target: Path) -> Path:
    """The database and its log as a crash leaves them, copied while the writer is still open."""
    shutil.copyfile(source, target)
    shutil.copyfile(f"{source}-wal", f"{target}-wal")
    return target


def test_a_checkpoint_cut_short_after_page_one_opens_whole(tmp_path: Path) -> None:
    writer = _logged_database(tmp_path / "live.db", rows=200)
    image = _crash_image(tmp_path / "live.db", tmp_path / "crashed.db")
    writer.close()
    page_size = int.from_bytes(image.read_bytes()[16:18], "big")
    page_one = _newest_page_one(Path(f"{image}-wal").read_bytes(), page_size)
    with image.open("r+b") as raw:  # the checkpoint wrote page 1 and died before the rest
        raw.write(page_one)
    claimed = int.from_bytes(page_one[28:32], "big") * page_size
    assert image.stat().st_size < claimed, "the image does not look truncated: the test proves nothing"
    check_file(str(image))
    with sqlite3.connect(image) as conn:
        assert conn.execute("SELECT count(*) FROM filler").fetchone() == (201,)
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_truncated_file_without_a_log_is_refused(tmp_path: Path) -> None:
    writer = _logged_database(tmp_path / "live.db", rows=200)
    writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    writer.close()
    path = tmp_path / "live.db"
    with path.open("r+b") as raw:
        raw.truncate(path.stat().st_size // 2)
    with pytest.raises(StoreOpenFailed, match="truncated"):
        check_file(str(path))
