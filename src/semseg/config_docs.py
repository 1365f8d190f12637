"""The configuration reference page, generated from the pydantic schema in semseg.config
(`semseg config docs`), so the documentation cannot drift from the keys the code reads."""

from __future__ import annotations

import inspect
import json
import types
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from semseg.config import Config

_HEADER = """# Configuration reference

Generated from the schema in `src/semseg/config.py` by `semseg config docs`; a test fails
when this page differs from what the command writes, so it always lists the keys the code
reads. Set a key in a YAML file given with `-c FILE`, or on the command line as a dotted
override (`semseg train -c FILE data.batch_size=4 'eval.scales=[0.75,1,1.25]'`; values are
parsed as YAML). `semseg config show -c FILE ...` prints the resolved configuration.
A misspelt key or a value out of range stops any command with one line naming the key.
"""

_BOUNDS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}


def type_name(annotation: Any) -> str:
    """A reader's name for a field type: `int | auto`, `[float, float]`, `path or null`."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:  # PositiveInt and friends
        return type_name(args[0])
    if origin is Literal:
        return " | ".join(str(arg) for arg in args)
    if origin in (Union, types.UnionType):
        named = [type_name(arg) for arg in args if arg is not type(None)]
        return " | ".join(named) + (" or null" if type(None) in args else "")
    if origin is tuple:
        return "[" + ", ".join(type_name(arg) for arg in args) + "]"
    if origin is list:
        return f"list of {type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"map {type_name(args[0])} -> {type_name(args[1])}"
    if annotation is Path:
        return "path"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo) -> str:
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return ""
    if isinstance(value, Path):
        value = str(value)
    return f"`{json.dumps(value)}`"


def _bounds(field: FieldInfo) -> str:
    found = []
    for constraint in field.metadata:
        for attribute, symbol in _BOUNDS.items():
            bound = getattr(constraint, attribute, None)
            if bound is not None:
                found.append(f"{symbol} {bound}")
    return ", ".join(found)


def _rows(model: type[BaseModel], prefix: str) -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        nested = field.annotation
        if isinstance(nested, type) and issubclass(nested, BaseModel):
            rows += _rows(nested, f"{prefix}{name}.")
            continue
        kind = type_name(field.annotation)
        bounds = _bounds(field)
        kind = f"{kind} ({bounds})" if bounds else kind
        description = (field.description or "").replace("|", "\\|")
        kind = kind.replace("|", "\\|")
        rows.append(f"| `{prefix}{name}` | {kind} | {_default(field)} | {description} |")
    return rows


def configuration_reference() -> str:
    """The whole Markdown page: one table per top-level section."""
    parts = [_HEADER]
    for name, field in Config.model_fields.items():
        section = field.annotation
        parts.append(f"## `{name}`\n")
        if isinstance(section, type) and issubclass(section, BaseModel):
            parts.append(inspect.cleandoc(section.__doc__ or "") + "\n")
            rows = _rows(section, f"{name}.")
        else:
            rows = _rows(_single_field_model(name, field), "")
        parts.append("| key | type | default | what it does |\n|---|---|---|---|")
        parts.append("\n".join(rows) + "\n")
    return "\n".join(parts)


def _single_field_model(name: str, field: FieldInfo) -> type[BaseModel]:
    """A top-level key that is not a section (plugins) as a one-row table."""
    return type(
        "TopLevel", (BaseModel,), {"__annotations__": {name: field.annotation}, name: field}
    )
