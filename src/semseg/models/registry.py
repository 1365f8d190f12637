"""Model registry: a name maps to a builder function `(num_classes, in_channels, **kw)`."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from semseg.errors import SemsegError

ModelBuilder = Callable[..., nn.Module]
_MODELS: dict[str, ModelBuilder] = {}


def register_model(builder: ModelBuilder) -> ModelBuilder:
    """Decorator: register `builder` under its function name; a duplicate name is a bug."""
    name = builder.__name__
    if name in _MODELS:
        raise RuntimeError(f"model {name!r} is already registered")
    _MODELS[name] = builder
    return builder


def list_models() -> list[str]:
    return sorted(_MODELS)


def build_model(name: str, num_classes: int, in_channels: int = 3, **options: Any) -> nn.Module:
    """Build a registered model; `options` with value None are left at the builder default."""
    if name not in _MODELS:
        available = ", ".join(list_models())
        raise SemsegError(
            f"config key 'model.name': unknown model {name!r}; available: {available}"
        )
    builder = _MODELS[name]
    accepted = inspect.signature(builder).parameters
    given = {key: value for key, value in options.items() if value is not None}
    for key in given:
        if key not in accepted:
            raise SemsegError(
                f"config key 'model.{key}' does not apply to model {name!r}; remove it"
            )
    return builder(num_classes=num_classes, in_channels=in_channels, **given)
