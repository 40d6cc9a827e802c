"""Checking what a caller asks to append before it becomes a Draft."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from schemas import DeliveryContext, Role, Usage
from schemas.base import describe_errors
from worker.errors import InvalidArgument
from worker.sessions.transcript import Draft


def _usage(value: Usage | dict[str, int] | None) -> Usage | None:
    if value is None or isinstance(value, Usage):
        return value
    try:
        return Usage.model_validate(value)
    except ValidationError as exc:
        raise InvalidArgument(f"invalid usage: {describe_errors(exc, where='usage')}") from exc


def _check_content(role: Role, content: str | None, tool: str | None, result: Any) -> None:
    """An entry must say something: text for a message, a name for a tool call, a result."""
    if role == "tool":
        if not tool:
            raise InvalidArgument("a tool entry needs the tool's name")
    elif role == "tool-result":
        if result is None and not content:
            raise InvalidArgument("a tool-result entry needs a result or content")
    elif not isinstance(content, str) or not content.strip():
        raise InvalidArgument(f"{role} entries need text (got {'nothing' if not content else type(content).__name__})")


def checked_draft(
    role: Role,
    content: str | None,
    *,
    usage: Usage | dict[str, int] | None,
    tool: str | None,
    args: dict[str, Any] | None,
    result: Any,
    important: bool,
    event_id: str | None,
    delivery: DeliveryContext | None,
) -> Draft:
    """The Draft of one entry, or InvalidArgument saying what it lacks."""
    _check_content(role, content, tool, result)
    return Draft(
        role=role,
        content=content,
        tool=tool,
        args=args,
        result=result,
        usage=_usage(usage),
        important=important,
        event_id=event_id,
        delivery=delivery,
    )
