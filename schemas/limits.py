"""The size limits of the contracts, in one place: the models, the JSON Schema and the docs use them."""

from __future__ import annotations

from typing import Any

from pydantic_core import PydanticCustomError

MAX_ID_CHARS = 256
MAX_TEXT_CHARS = 262_144  # a message's text or an entry's content
MAX_COMMAND_CHARS = 10_000
MAX_INT = 2**53 - 1  # the largest integer every JSON parser reads exactly
MAX_JSON_DEPTH = 32  # free-form values (a tool's args and result)


def json_depth(value: Any, limit: int) -> int:
    """How deeply `value` nests (a scalar is 0), counting no further than `limit` + 1."""
    if limit < 0 or not isinstance(value, dict | list):
        return 0
    children = value.values() if isinstance(value, dict) else value
    return 1 + max((json_depth(child, limit - 1) for child in children), default=0)


def bounded_json(value: Any) -> Any:
    """Rejects free-form JSON nested deeper than MAX_JSON_DEPTH levels."""
    if json_depth(value, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise PydanticCustomError("too_deep", "nested deeper than {limit} levels", {"limit": MAX_JSON_DEPTH})
    return value
