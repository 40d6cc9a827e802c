"""Sealing the free-text fields of checkpoints and summaries with the transcript codec.

The associated data names the record and field, so a sealed name cannot be moved to another
checkpoint, or a summary's text to another summary, without failing to open.
"""

from __future__ import annotations

from collections.abc import Callable

from schemas import Checkpoint, Summary
from worker.payload import PayloadCodec

Transform = Callable[[str, str, str], str]  # (session id, purpose, text) -> text


def _checkpoint_texts(transform: Transform, checkpoint: Checkpoint) -> Checkpoint:
    """Apply seal_text or open_text to the checkpoint's name and description."""
    sid, purpose = checkpoint.session_id, f"checkpoint:{checkpoint.id}"
    description = checkpoint.description
    return checkpoint.model_copy(
        update={
            "name": transform(sid, f"{purpose}:name", checkpoint.name),
            "description": None if description is None else transform(sid, f"{purpose}:description", description),
        }
    )


def seal_checkpoint(codec: PayloadCodec, checkpoint: Checkpoint) -> Checkpoint:
    return _checkpoint_texts(codec.seal_text, checkpoint)


def open_checkpoint(codec: PayloadCodec, checkpoint: Checkpoint) -> Checkpoint:
    return _checkpoint_texts(codec.open_text, checkpoint)


def seal_summary(codec: PayloadCodec, summary: Summary) -> Summary:
    sealed = codec.seal_text(summary.session_id, f"summary:{summary.id}", summary.content)
    return summary.model_copy(update={"content": sealed})


def open_summary(codec: PayloadCodec, summary: Summary) -> Summary:
    opened = codec.open_text(summary.session_id, f"summary:{summary.id}", summary.content)
    return summary.model_copy(update={"content": opened})
