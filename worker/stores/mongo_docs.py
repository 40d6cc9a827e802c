"""Document <-> model conversion for the MongoDB store.

BSON has no tuples, and pymongo may return naive datetimes or bson.Binary, so documents are
normalized on the way in and out; the pydantic models validate the result.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

from schemas import Checkpoint, DeliveryContext, SessionEntry, Summary
from worker.stores.base import StoredEntry

Doc = dict[str, Any]


def plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def utc(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: utc(v) for k, v in value.items()}
    if isinstance(value, list):
        return [utc(v) for v in value]
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def to_doc(model: SessionEntry | Checkpoint | Summary) -> Doc:
    doc: Doc = plain(model.model_dump(mode="python"))
    doc["_id"] = doc.pop("id")
    return doc


def model_fields_of(doc: Doc) -> Doc:
    """A stored document as model fields: `_id` back to `id`, datetimes aware."""
    out: Doc = utc(doc)
    out["id"] = out.pop("_id")
    return out


def session_from_doc(doc: Doc | None) -> SessionEntry | None:
    return None if doc is None else SessionEntry.model_validate(model_fields_of(doc))


def entry_doc(entry: StoredEntry) -> Doc:
    doc: Doc = {f.name: getattr(entry, f.name) for f in fields(entry)}
    doc["_id"] = f"{entry.session_id}:{entry.seq}"
    doc["delivery"] = None if entry.delivery is None else entry.delivery.model_dump()
    doc["payload"] = bytes(entry.payload)
    return doc


def entry_from_doc(doc: Doc) -> StoredEntry:
    values: Doc = utc(doc)
    values.pop("_id", None)
    delivery = values.get("delivery")
    values["delivery"] = None if delivery is None else DeliveryContext.model_validate(delivery)
    values["payload"] = bytes(values["payload"])  # bson.Binary is a bytes subclass
    return StoredEntry(**values)


def delivery_fields(delivery: DeliveryContext) -> Doc:
    return {
        "delivery_context": delivery.model_dump(),
        "last_channel": delivery.channel,
        "last_to": delivery.to,
        "last_account_id": delivery.account_id,
        "last_thread_id": delivery.thread_id,
    }
