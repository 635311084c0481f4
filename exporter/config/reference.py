"""The generated reference: a Markdown table of every key of a config model (the README's tables).

``config_reference(AggregatorConfig)`` renders path, type (with its bounds), default and
description of each key; ``field_paths`` lists the same paths, in the same order, for tests
that check every key is documented.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from exporter.config.fields import is_union, unwrap


def config_reference(model_cls: type[BaseModel]) -> str:
    """A Markdown table of every key of ``model_cls``: path, type, default, description.

    Items of lists appear as ``models[].name``, entries of mappings as ``features.<key>.psi``.
    """
    lines = ["| key | type | default | description |", "| --- | --- | --- | --- |"]
    for path, field in _walk_fields(model_cls, ""):
        cells = (f"`{path}`", _type_text(field), _default_text(field), field.description or "")
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def field_paths(model_cls: type[BaseModel]) -> list[str]:
    """Every key path ``config_reference`` documents, in its order."""
    return [path for path, _ in _walk_fields(model_cls, "")]


def _walk_fields(model_cls: type[BaseModel], prefix: str) -> Iterable[tuple[str, FieldInfo]]:
    for name, field in model_cls.model_fields.items():
        path = f"{prefix}{name}"
        yield path, field
        nested, suffix = _nested_model(field.annotation)
        if nested is not None:
            yield from _walk_fields(nested, f"{path}{suffix}.")


def _nested_model(annotation: Any) -> tuple[type[BaseModel] | None, str]:
    """The section type under ``annotation`` and how its path continues (``[]``, ``.<key>``)."""
    annotation = unwrap(annotation)
    suffix = ""
    if get_origin(annotation) in (tuple, list):
        annotation, suffix = unwrap(get_args(annotation)[0]), "[]"
    elif get_origin(annotation) is dict:
        annotation, suffix = unwrap(get_args(annotation)[1]), ".<key>"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, suffix
    return None, ""


_SCALAR_NAMES = {str: "string", int: "integer", float: "number", bool: "boolean", Path: "path"}


def _type_text(field: FieldInfo) -> str:
    text = _annotation_text(field.annotation)
    bounds = _bounds_text([*field.metadata, *_annotated_metadata(field.annotation)])
    return f"{text} ({bounds})" if bounds else text


def _annotation_text(annotation: Any) -> str:
    annotation = unwrap(annotation)
    origin = get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(f"`{value}`" for value in get_args(annotation))
    if origin in (tuple, list):
        return f"list of {_plural(_annotation_text(get_args(annotation)[0]))}"
    if origin is dict:
        key, value = get_args(annotation)
        return f"mapping of {_annotation_text(key)} → {_annotation_text(value)}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    return _SCALAR_NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _plural(text: str) -> str:
    return {"section": "sections", "number": "numbers", "string": "strings", "integer": "integers"}.get(text, text)


def _annotated_metadata(annotation: Any) -> list[Any]:
    """Constraints carried by ``Annotated`` aliases such as ``Port``, also inside ``X | None``."""
    found: list[Any] = []
    stack = [annotation]
    while stack:
        current = stack.pop()
        if get_origin(current) is Annotated:
            base, *metadata = get_args(current)
            for item in metadata:
                found.extend(item.metadata if isinstance(item, FieldInfo) else [item])
            stack.append(base)
        elif is_union(current):
            stack.extend(get_args(current))
    return found


def _bounds_text(metadata: Iterable[Any]) -> str:
    parts = []
    for item in metadata:
        if isinstance(item, annotated_types.Gt):
            parts.append(f"> {item.gt}")
        elif isinstance(item, annotated_types.Ge):
            parts.append(f"≥ {item.ge}")
        elif isinstance(item, annotated_types.Lt):
            parts.append(f"< {item.lt}")
        elif isinstance(item, annotated_types.Le):
            parts.append(f"≤ {item.le}")
        elif isinstance(item, annotated_types.MinLen) and item.min_length > 0:
            parts.append(f"at least {item.min_length}")
    return ", ".join(parts)


def _default_text(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)  # no factory here takes the validated data
    if isinstance(value, BaseModel):
        return ""  # a section: its keys carry the defaults
    if value is None:
        return "unset"
    if isinstance(value, dict) and not value:
        return "`{}`"
    return f"`{_plain(value)}`"


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, Path)):
        return str(value)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_plain(item) for item in value) + "]"
    if isinstance(value, BaseModel):
        return _plain(value.model_dump(mode="json"))
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {_plain(item)}" for key, item in value.items()) + "}"
    return json.dumps(value)
