"""Shared pydantic configuration: snake_case in Python, camelCase on the wire."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel


class WireModel(BaseModel):
    """Base for every document: camelCase aliases, accepts both spellings, rejects unknown keys."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )

    def to_wire(self) -> dict[str, object]:
        """The JSON-ready camelCase form, without absent (None) fields."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def describe_errors(exc: ValidationError, *, where: str = "value", prefix: str = "", limit: int = 10) -> str:
    """A validation error as one readable line: 'field.path: problem; ...' (no input values)."""
    return "; ".join(
        f"{prefix}{'.'.join(str(part) for part in err['loc']) or where}: {err['msg']}" for err in exc.errors()[:limit]
    )


def utc_now() -> datetime:
    return datetime.now(UTC)
