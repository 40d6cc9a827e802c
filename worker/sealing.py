"""Sealing the free-text fields of checkpoints and summaries with the transcript codec.

The associated data names the record and field, so a sealed name cannot be moved to another
checkpoint, or a summary's text to another summary, without failing to open.
"""

from __future__ import annotations

from schemas import Checkpoint, Summary
from worker.payload import PayloadCodec


def seal_checkpoint(codec: PayloadCodec, checkpoint: Checkpoint) -> Checkpoint:
    sid, cid = checkpoint.session_id, checkpoint.id
    description = checkpoint.description
    return checkpoint.model_copy(
        update={
            "name": codec.seal_text(sid, f"checkpoint:{cid}:name", checkpoint.name),
            "description": None
            if description is None
            else codec.seal_text(sid, f"checkpoint:{cid}:description", description),
        }
    )


def open_checkpoint(codec: PayloadCodec, checkpoint: Checkpoint) -> Checkpoint:
    sid, cid = checkpoint.session_id, checkpoint.id
    description = checkpoint.description
    return checkpoint.model_copy(
        update={
            "name": codec.open_text(sid, f"checkpoint:{cid}:name", checkpoint.name),
            "description": None
            if description is None
            else codec.open_text(sid, f"checkpoint:{cid}:description", description),
        }
    )


def seal_summary(codec: PayloadCodec, summary: Summary) -> Summary:
    sealed = codec.seal_text(summary.session_id, f"summary:{summary.id}", summary.content)
    return summary.model_copy(update={"content": sealed})


def open_summary(codec: PayloadCodec, summary: Summary) -> Summary:
    opened = codec.open_text(summary.session_id, f"summary:{summary.id}", summary.content)
    return summary.model_copy(update={"content": opened})
