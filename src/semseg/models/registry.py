"""Model registry: a name maps to a builder `(num_classes, in_channels, **options)`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from semseg.registry import Registry

ModelBuilder = Callable[..., nn.Module]

MODELS: Registry[ModelBuilder] = Registry("model", "model.name")


def register_model(name: str | ModelBuilder | None = None) -> Any:
    """Decorator registering a model builder, so that configs can name it (`model.name`).

    Used bare (`@register_model`, the function's name) or with a name
    (`@register_model("mine")`). The builder takes `num_classes` and `in_channels`, then
    keyword options that configs set as `model.KEY` (encoder, aux_head, ...); it returns
    a module mapping N x in_channels x H x W images to N x num_classes x H x W logits.
    Subclass `SegmentationModel` for padding to any size, an auxiliary head
    (`forward_with_aux`) and `normalization`; a plain nn.Module works too.

    Returns:
        The decorator (or, used bare, the builder itself, unchanged).

    Raises:
        RuntimeError: the name is taken.
    """
    return MODELS.register(name)


# Parameters semseg passes itself; every other builder parameter is a `model.*` key.
_BUILT_IN = ("num_classes", "in_channels")


def list_models() -> list[str]:
    """The registered model names, sorted."""
    return MODELS.names()


def build_model(name: str, num_classes: int, in_channels: int = 3, **options: Any) -> nn.Module:
    """Build a registered model.

    Args:
        name: a registered name (`semseg models` lists them).
        num_classes: classes the logits score.
        in_channels: image channels (3 for RGB, 1 for `data.image_mode=gray`).
        **options: builder keywords such as `encoder` or `aux_head`; those given as None
            keep the builder's default.

    Returns:
        The model; `forward(images)` returns logits at the input's size.

    Raises:
        SemsegError: unknown name, or an option this model does not take (named as the
            config key `model.OPTION`).
    """
    builder = MODELS.get(name).function
    given = {key: value for key, value in options.items() if value is not None}
    MODELS.check_parameters(name, given, key="model", reserved=_BUILT_IN)
    return builder(num_classes=num_classes, in_channels=in_channels, **given)
