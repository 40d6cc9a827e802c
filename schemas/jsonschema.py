"""Standard JSON Schema (draft 2020-12) of every contract, for gateways and runtimes in other languages.

pydantic's output is made portable here: no OpenAPI `discriminator` (the union stays a plain
`oneOf`, each branch fixing `type` with a `const`), no `format` (ajv in strict mode refuses formats
it has no plug-in for; date-times get a pattern instead), and the rules the models check in code
(`type` present, the ids a chat source needs, which query takes which fields) written as
`required` and `if`/`then`. The result compiles in ajv's strict mode and in Python's `jsonschema`
with no custom keyword, and rejects what the worker rejects.
"""

from __future__ import annotations

import json
from copy import deepcopy
from typing import Any, get_args

from pydantic import BaseModel, TypeAdapter

from schemas.events import INBOUND_EVENT, NO_CONTROL_CHARACTERS, InboundEvent
from schemas.limits import MAX_INT, MAX_JSON_DEPTH
from schemas.outbound import NoticeEvent, ReplyEvent, SummarizeRequest, TurnEvent
from schemas.queries import NEEDS_SESSION, QUERY_FORMATS, QueryRequest, QueryResponse

DRAFT = "https://json-schema.org/draft/2020-12/schema"
# RFC 3339 date-time with its offset (the worker also takes a time without one, but then whose
# local time it is depends on the machine: the contract asks for the offset).
DATE_TIME_PATTERN = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(\.[0-9]{1,6})?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
# An id: no control characters, and not blank, since the worker trims White_Space first (the
# schema cannot trim: spaces around an id pass, and the worker stores the id without them).
_NOT_CONTROL = r"[^\x00-\x1f\x7f-\x9f]"
_NOT_BLANK = r"[^\x00-\x1f\x7f-\x9f \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
ID_PATTERN = f"^{_NOT_CONTROL}*{_NOT_BLANK}{_NOT_CONTROL}*$"
# A required text (a name, a command) has a character that is not White_Space (unanchored: anywhere).
TEXT_PATTERN = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
COMMENT = (
    "Ids are trimmed of surrounding White_Space by the worker, then must be 1..256 characters without control "
    "characters. Routing keys: docs/reference/routing-keys.md."
)
Schema = dict[str, Any]


def _inbound_models() -> tuple[type[BaseModel], ...]:
    return get_args(get_args(InboundEvent)[0])


def event_schemas() -> dict[str, Schema]:
    """File stem -> JSON Schema (camelCase, as on the wire), for every contract."""
    documents: dict[str, Schema] = {"inbound-event": INBOUND_EVENT.json_schema(by_alias=True)}
    for model in _inbound_models():
        documents[str(model.model_fields["type"].default)] = model.model_json_schema(by_alias=True)
    for name, outbound in (
        ("reply-event", ReplyEvent),
        ("turn-event", TurnEvent),
        ("notice-event", NoticeEvent),
        ("summarize-request", SummarizeRequest),
        ("query-request", QueryRequest),
        ("query-response", QueryResponse),
    ):
        documents[name] = TypeAdapter(outbound).json_schema(by_alias=True)
    return {name: _portable(name, schema) for name, schema in documents.items()}


def render(schema: Schema) -> str:
    """The exported file's text (what `sessions schemas --out` writes and the repository holds)."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def _portable(name: str, schema: Schema) -> Schema:
    portable = _standard(deepcopy(schema))
    for definition in _object_schemas(portable):
        _require_type(definition)
        if definition.get("title") == "ChatSource":
            _chat_source_rules(definition)
        if definition.get("title") == "QueryRequest":
            _query_rules(definition)
        if definition.get("title") == "AgentMessage":
            _bounded_free_form(definition)
            portable.setdefault("$defs", {}).update(_json_depths())
    return {"$schema": DRAFT, "$id": f"{name}.schema.json", "$comment": COMMENT, **portable}


def _standard(node: Any) -> Any:
    """Drop the keywords that are not standard or not portable; bound every integer."""
    if isinstance(node, list):
        return [_standard(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _standard(value) for key, value in node.items() if key != "discriminator"}
    if out.get("pattern") == NO_CONTROL_CHARACTERS:
        out["pattern"] = ID_PATTERN
    if out.get("type") == "string" and out.get("minLength", 0) >= 1 and "pattern" not in out:
        out["pattern"] = TEXT_PATTERN
    if out.get("format") == "date-time":
        del out["format"]
        out["pattern"] = DATE_TIME_PATTERN
    if out.get("type") == "integer":
        out.setdefault("maximum", MAX_INT)
    return out


def _object_schemas(schema: Schema) -> list[Schema]:
    return [schema, *schema.get("$defs", {}).values()]


def _require_type(definition: Schema) -> None:
    """pydantic gives `type` a default (handy in Python); on the wire every event names its type."""
    kind = definition.get("properties", {}).get("type", {})
    if "const" in kind and "type" not in definition.get("required", []):
        definition["required"] = ["type", *definition.get("required", [])]


def _chat_source_rules(definition: Schema) -> None:
    """A group is keyed by its peerId; a direct chat by its userId, else its peerId."""
    present = {"type": "string"}  # null counts as absent in the worker
    definition["if"] = {"properties": {"chatType": {"const": "group"}}, "required": ["chatType"]}
    definition["then"] = {"properties": {"peerId": present}, "required": ["peerId"]}
    definition["else"] = {
        "anyOf": [
            {"properties": {"userId": present}, "required": ["userId"]},
            {"properties": {"peerId": present}, "required": ["peerId"]},
        ]
    }


def _json_depths() -> Schema:
    """JsonDepthN: any JSON value nested at most N levels (a scalar is level 0), as the worker counts."""
    scalar: Schema = {"anyOf": [{"type": kind} for kind in ("string", "number", "boolean", "null")]}
    depths: Schema = {"JsonDepth0": scalar}
    for depth in range(1, MAX_JSON_DEPTH + 1):
        inner = {"$ref": f"#/$defs/JsonDepth{depth - 1}"}
        depths[f"JsonDepth{depth}"] = {
            "anyOf": [
                {"type": "array", "items": inner},
                {"type": "object", "additionalProperties": inner},
                {"$ref": "#/$defs/JsonDepth0"},
            ]
        }
    return depths


def _bounded_free_form(definition: Schema) -> None:
    """A tool's args and result are free-form JSON, but no deeper than the worker's limit."""
    properties = definition["properties"]
    args = {"type": "object", "additionalProperties": {"$ref": f"#/$defs/JsonDepth{MAX_JSON_DEPTH - 1}"}}
    properties["args"] = {**properties["args"], "anyOf": [args, {"type": "null"}]}
    properties["result"] = {**properties["result"], "$ref": f"#/$defs/JsonDepth{MAX_JSON_DEPTH}"}


def _query_rules(definition: Schema) -> None:
    """The model's cross-field checks: which queries need a session, which take which format."""
    rules: list[Schema] = [
        {
            "if": {"properties": {"query": {"enum": list(NEEDS_SESSION)}}},
            "then": {"properties": {"sessionId": {"type": "string"}}, "required": ["sessionId"]},
        }
    ]
    for query in definition["properties"]["query"]["enum"]:
        formats = QUERY_FORMATS.get(query, ())
        allowed: Schema = {"anyOf": [{"enum": list(formats)}, {"type": "null"}]} if formats else {"type": "null"}
        rules.append({"if": {"properties": {"query": {"const": query}}}, "then": {"properties": {"format": allowed}}})
    definition["allOf"] = rules
