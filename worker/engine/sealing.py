"""Sealing the free-text fields of checkpoints and summaries with the transcript codec.

The associated data names the record and field, so a sealed name cannot be moved to another
checkpoint, or a summary's text to another summary, without failing to open. Whether a record's
texts are sealed is stored beside them (`sealed_with`, the sealing key's id) and the codec goes
by that alone: any text is storable and readable, "enc1:..." included. Records written before
`sealed_with` existed lack the field; only for those the texts' own form tells (strictly: a text
must parse whole as a sealed one).
"""

from __future__ import annotations

from schemas import Checkpoint, Summary
from worker.engine.crypto import sealed_text_key
from worker.engine.payload import PayloadCodec, SealedText


def seal_checkpoint(codec: PayloadCodec, checkpoint: Checkpoint) -> Checkpoint:
    sid, purpose = checkpoint.session_id, f"checkpoint:{checkpoint.id}"
    name = codec.seal_field(sid, f"{purpose}:name", checkpoint.name)
    description = checkpoint.description
    sealed_description = None if description is None else codec.seal_field(sid, f"{purpose}:description", description)
    return checkpoint.model_copy(
        update={
            "name": name.text,
            "description": None if sealed_description is None else sealed_description.text,
            "sealed_with": name.key_id,
        }
    )


def open_checkpoint(codec: PayloadCodec, checkpoint: Checkpoint) -> Checkpoint:
    sid, purpose = checkpoint.session_id, f"checkpoint:{checkpoint.id}"
    description = checkpoint.description

    def opened(field: str, text: str) -> str:
        if "sealed_with" not in checkpoint.model_fields_set:  # written before the field existed
            return codec.open_text(sid, f"{purpose}:{field}", text)
        return codec.open_field(sid, f"{purpose}:{field}", SealedText(text, checkpoint.sealed_with))

    return checkpoint.model_copy(
        update={
            "name": opened("name", checkpoint.name),
            "description": None if description is None else opened("description", description),
            "sealed_with": None,
        }
    )


def seal_summary(codec: PayloadCodec, summary: Summary) -> Summary:
    sealed = codec.seal_field(summary.session_id, f"summary:{summary.id}", summary.content)
    return summary.model_copy(update={"content": sealed.text, "sealed_with": sealed.key_id})


def open_summary(codec: PayloadCodec, summary: Summary) -> Summary:
    purpose = f"summary:{summary.id}"
    if "sealed_with" not in summary.model_fields_set:  # written before the field existed
        opened = codec.open_text(summary.session_id, purpose, summary.content)
    else:
        opened = codec.open_field(summary.session_id, purpose, SealedText(summary.content, summary.sealed_with))
    return summary.model_copy(update={"content": opened, "sealed_with": None})


def sealed_with(record: Checkpoint | Summary) -> str | None:
    """The key that sealed a record's texts, told by its own form for records without the field."""
    if "sealed_with" in record.model_fields_set:
        return record.sealed_with
    return sealed_text_key(record.name if isinstance(record, Checkpoint) else record.content)
