"""The exported JSON Schemas are standard draft 2020-12, committed up to date, and exactly as strict as
the worker: the corpus in schemas/vectors/events.json gets the same verdict from both."""

from __future__ import annotations

import json
from copy import deepcopy
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError
from typer.testing import CliRunner

from schemas.delivery import DeliveryContext
from schemas.events import INBOUND_EVENT
from schemas.jsonschema import event_schemas, render
from schemas.outbound import NoticeEvent, ReplyEvent, SummarizeRequest, TurnEvent
from schemas.queries import QueryRequest, QueryResponse
from worker.app import cli  # noqa: F401 - registers the commands on `app`
from worker.app.cli_support import app

ROOT = Path(__file__).resolve().parents[2]
EXPORTED = ROOT / "schemas/json"
CORPUS = json.loads((ROOT / "schemas/vectors/events.json").read_text())


def nested(depth: int) -> dict[str, Any]:
    return {} if depth <= 1 else {"a": nested(depth - 1)}


def expanded(case: dict[str, Any]) -> Any:
    """The case's event, with its `expand` field (a long text or a deep value) filled in."""
    event = deepcopy(case["event"])
    if "expand" in case:
        rule = case["expand"]
        event[rule["field"]] = nested(rule["nest"]) if "nest" in rule else rule["repeat"] * rule["times"]
    return event


def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads((EXPORTED / f"{name}.schema.json").read_text()))


def keywords(node: Any) -> set[str]:
    """Every keyword a schema uses (the names under `properties` and `$defs` are not keywords)."""
    if isinstance(node, list):
        return set().union(*(keywords(item) for item in node))
    if not isinstance(node, dict):
        return set()
    found = set(node)
    for key, value in node.items():
        children = value.values() if key in ("properties", "$defs") and isinstance(value, dict) else [value]
        found |= set().union(*(keywords(child) for child in children))
    return found


def pydantic_accepts(event: Any) -> bool:
    try:
        INBOUND_EVENT.validate_json(json.dumps(event))
    except ValidationError:
        return False
    return True


def test_the_committed_files_are_the_export() -> None:
    fresh = {f"{name}.schema.json": render(schema) for name, schema in event_schemas().items()}
    committed = {path.name: path.read_text() for path in EXPORTED.glob("*.json")}
    assert committed == fresh, "schemas/json is stale: run .venv/bin/python ops/scripts/update-docs.py"


def test_the_cli_writes_the_same_files(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["schemas", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    written = {path.name: path.read_text() for path in tmp_path.iterdir()}
    assert written == {path.name: path.read_text() for path in EXPORTED.glob("*.json")}


@pytest.mark.parametrize("path", sorted(EXPORTED.glob("*.json")), ids=lambda p: p.name)
def test_every_file_is_valid_draft_2020_12_without_custom_keywords(path: Path) -> None:
    schema = json.loads(path.read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    used = keywords(schema)
    assert not used & {"discriminator", "format", "nullable"}, f"{path.name} uses {used}"
    assert not [keyword for keyword in used if keyword.startswith("x-")]


def test_every_inbound_type_has_its_own_file_and_requires_type() -> None:
    union = json.loads((EXPORTED / "inbound-event.schema.json").read_text())
    branches = [union["$defs"][ref["$ref"].rsplit("/", 1)[1]] for ref in union["oneOf"]]
    for branch in branches:
        assert "type" in branch["required"]
        assert (EXPORTED / f"{branch['properties']['type']['const']}.schema.json").exists()


@pytest.mark.parametrize("case", CORPUS["valid"], ids=lambda c: c["why"])
def test_valid_events_pass_the_schemas_and_the_models(case: dict[str, Any]) -> None:
    event = expanded(case)
    assert pydantic_accepts(event)
    validator("inbound-event").validate(event)
    validator(event["type"]).validate(event)


@pytest.mark.parametrize("case", CORPUS["invalid"], ids=lambda c: c["why"])
def test_invalid_events_fail_the_schemas_and_the_models(case: dict[str, Any]) -> None:
    event = expanded(case)
    assert not pydantic_accepts(event)
    assert not validator("inbound-event").is_valid(event)
    if isinstance(event, dict) and (EXPORTED / f"{event.get('type')}.schema.json").exists():
        assert not validator(str(event["type"])).is_valid(event)


@pytest.mark.parametrize("request_", CORPUS["queries"]["valid"], ids=lambda r: r["query"])
def test_valid_queries_pass_both(request_: dict[str, Any]) -> None:
    QueryRequest.model_validate_json(json.dumps(request_))
    validator("query-request").validate(request_)


@pytest.mark.parametrize("case", CORPUS["queries"]["invalid"], ids=lambda c: c["why"])
def test_invalid_queries_fail_both(case: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        QueryRequest.model_validate_json(json.dumps(case["request"]))
    assert not validator("query-request").is_valid(case["request"])


def test_outbound_events_the_worker_publishes_match_their_schemas() -> None:
    delivery = DeliveryContext(channel="telegram", to="-1001234567890", thread_id="77", reply_to_id="901")
    common: dict[str, Any] = {"event_id": "o-1", "agent_id": "main", "session_id": "s-1"}
    published = {
        "reply-event": ReplyEvent(**common, in_reply_to="tg-901", kind="command-result", text="ok", delivery=delivery),
        "turn-event": TurnEvent(
            **common, in_reply_to="tg-901", seq=1, text="hi", delivery=delivery, ordering_key="agent:main:x:peer:1"
        ),
        "notice-event": NoticeEvent(**common, in_reply_to="r-1", kind="session-reset", text="reset"),
        "summarize-request": SummarizeRequest(**common, from_seq=1, to_seq=9, ordering_key="agent:main:x:peer:1"),
        "query-response": QueryResponse(ok=False, error="no such session", code="not-found"),
    }
    for name, event in published.items():
        wire = event.to_wire()
        validator(name).validate(wire)
        if "type" in wire:
            assert not validator(name).is_valid({key: value for key, value in wire.items() if key != "type"})
