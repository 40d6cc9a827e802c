"""JSON Schema for every event contract, for gateways and runtimes written in other languages."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from schemas.events import INBOUND_EVENT
from schemas.outbound import NoticeEvent, ReplyEvent, SummarizeRequest, TurnEvent


def event_schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema (camelCase, as on the wire)."""
    schemas: dict[str, dict[str, Any]] = {"inbound-event": INBOUND_EVENT.json_schema(by_alias=True)}
    for name, model in (
        ("reply-event", ReplyEvent),
        ("turn-event", TurnEvent),
        ("notice-event", NoticeEvent),
        ("summarize-request", SummarizeRequest),
    ):
        schemas[name] = TypeAdapter(model).json_schema(by_alias=True)
    for schema in schemas.values():
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schemas
