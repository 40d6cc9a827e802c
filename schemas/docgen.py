"""Markdown reference of the event contracts and settings, generated from the models themselves."""

from __future__ import annotations

from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from schemas.events import (
    AgentMessage,
    ChatSource,
    CheckpointDelete,
    CheckpointRestore,
    CheckpointSave,
    CommandEvent,
    InboundMessage,
    MarkImportant,
    RetentionDue,
    SessionResetDue,
    SummaryProduced,
)
from schemas.outbound import NoticeEvent, ReplyEvent, SummarizeRequest, TurnEvent

INBOUND: tuple[type[BaseModel], ...] = (
    InboundMessage,
    CommandEvent,
    CheckpointSave,
    CheckpointRestore,
    CheckpointDelete,
    AgentMessage,
    SummaryProduced,
    MarkImportant,
    SessionResetDue,
    RetentionDue,
)
OUTBOUND: tuple[type[BaseModel], ...] = (ReplyEvent, TurnEvent, NoticeEvent, SummarizeRequest)
SHARED: tuple[type[BaseModel], ...] = (ChatSource,)


def _render(annotation: Any) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _render(args[0])
    if origin is Literal:
        return " or ".join(repr(arg) for arg in args)
    if origin in (Union, UnionType):
        return " or ".join(_render(arg) for arg in args)
    if origin is not None:
        inner = ", ".join(_render(arg) for arg in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    if annotation is type(None):
        return "null"
    if annotation is Any:
        return "any"
    return getattr(annotation, "__name__", str(annotation))


def _type_name(info: FieldInfo) -> str:
    return _render(info.annotation)


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    if info.default_factory is not None:
        return "generated"
    return f"`{info.default!r}`" if info.default is not None else ""


def model_table(model: type[BaseModel], *, wire: bool = True) -> str:
    rows = ["| field | type | default | description |", "|---|---|---|---|"]
    for name, info in model.model_fields.items():
        shown = (info.alias or name) if wire else name
        description = (info.description or "").replace("|", "\\|")
        rows.append(f"| `{shown}` | {_type_name(info)} | {_default(info)} | {description} |")
    return "\n".join(rows)


def _section(model: type[BaseModel]) -> str:
    doc = (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else ""
    type_field = model.model_fields.get("type")
    event_type = f" (`type: {type_field.default}`)" if type_field is not None and type_field.default else ""
    return f"### {model.__name__}{event_type}\n\n{doc}\n\n{model_table(model)}\n"


def contracts_markdown() -> str:
    parts = [
        "# Event contracts",
        "",
        "Generated from `schemas/` by `sessions schemas --markdown`; JSON Schema: `sessions schemas --out DIR`.",
        "Field names are camelCase on the wire; every event is versioned (`version: 1`).",
        "",
        "## Inbound (published to the inbound exchange, routing key = ordering key)",
        "",
        *(_section(model) for model in (*INBOUND, *SHARED)),
        "## Outbound (published by the workers)",
        "",
        *(_section(model) for model in OUTBOUND),
    ]
    return "\n".join(parts)


def settings_markdown(settings_model: type[BaseModel], prefix: str, aliases: dict[str, str]) -> str:
    """A table of the settings; a group of them (a field holding a model) gets a section of its own,
    its variables named `<PREFIX><GROUP>__<NAME>`."""
    groups = {
        name: info.annotation
        for name, info in settings_model.model_fields.items()
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
    }
    plain = [(aliases.get(name, f"{prefix}{name.upper()}"), info) for name, info in settings_model.model_fields.items()]
    parts = [_settings_table([(variable, info) for variable, info in plain if not _is_group(info, groups)])]
    for name, group in groups.items():
        doc = (group.__doc__ or "").strip()
        fields = [(f"{prefix}{name.upper()}__{sub.upper()}", info) for sub, info in group.model_fields.items()]
        parts.append(f"## {name.capitalize()}\n\n{doc}\n\n{_settings_table(fields)}")
    return "\n\n".join(parts)


def _is_group(info: FieldInfo, groups: dict[str, Any]) -> bool:
    return info.annotation in groups.values()


def _settings_table(fields: list[tuple[str, FieldInfo]]) -> str:
    rows = ["| variable | type | default | description |", "|---|---|---|---|"]
    for variable, info in fields:
        default: Any = _default(info)
        if "secret" in _type_name(info).lower() and not info.is_required():
            default = "(secret)" if info.default is not None else ""
        rows.append(f"| `{variable}` | {_type_name(info)} | {default} | {(info.description or '').replace('|', '/')} |")
    return "\n".join(rows)
