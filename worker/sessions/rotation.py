"""Re-seal every record under the primary key: entries, checkpoint texts and summaries.

Resumable by construction: only records not yet sealed by the primary are visited, and each
re-seal is a compare-and-set on the record's key id, so an interrupted run is simply run again,
and workers may keep writing (they already seal with the primary) while it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from worker.engine.crypto import EncryptingCodec
from worker.engine.payload import Sealed
from worker.engine.sealing import open_checkpoint, open_summary, seal_checkpoint, seal_summary, sealed_with
from worker.stores.base import RotationRecords

Progress = Callable[[int], None]


@dataclass
class RotationReport:
    primary: str
    entries: int = 0
    checkpoints: int = 0
    summaries: int = 0
    skipped: int = 0


async def count_pending(store: RotationRecords, codec: EncryptingCodec) -> int:
    return await store.count_unsealed(codec.ring.primary)


async def rotate(
    store: RotationRecords, codec: EncryptingCodec, *, batch: int = 500, progress: Progress | None = None
) -> RotationReport:
    if not codec.seal_new:
        raise ValueError("rotation seals records: turn encrypt_transcripts on")
    primary = codec.ring.primary
    report = RotationReport(primary)
    cursor: str | None = None
    while True:
        entries, cursor = await store.scan_unsealed(primary, cursor, batch)
        if not entries:
            break
        for entry in entries:
            plain = codec.open(entry.session_id, entry.seq, Sealed(entry.payload, entry.key_id))
            sealed = codec.seal(entry.session_id, entry.seq, plain)
            if await store.reseal_entry(entry, sealed.blob, primary):
                report.entries += 1
            else:
                report.skipped += 1  # changed meanwhile (another rotation run): fine either way
            if progress is not None:
                progress(1)
    await _rotate_checkpoints(store, codec, report, batch)
    await _rotate_summaries(store, codec, report, batch)
    await store.reclaim()
    return report


async def _rotate_checkpoints(
    store: RotationRecords, codec: EncryptingCodec, report: RotationReport, batch: int
) -> None:
    after: str | None = None
    while page := await store.scan_checkpoints(after, batch):
        after = page[-1].id
        for checkpoint in page:
            if sealed_with(checkpoint) == report.primary:
                continue
            fresh = seal_checkpoint(codec, open_checkpoint(codec, checkpoint))
            await store.replace_checkpoint_text(checkpoint.id, fresh.name, fresh.description, fresh.sealed_with)
            report.checkpoints += 1


async def _rotate_summaries(store: RotationRecords, codec: EncryptingCodec, report: RotationReport, batch: int) -> None:
    after: str | None = None
    while page := await store.scan_summaries(after, batch):
        after = page[-1].id
        for summary in page:
            if sealed_with(summary) == report.primary:
                continue
            fresh = seal_summary(codec, open_summary(codec, summary))
            await store.replace_summary_content(summary.id, fresh.content, fresh.sealed_with)
            report.summaries += 1
