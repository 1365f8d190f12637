"""Loss registry. Every loss takes logits N x C x H x W and int64 targets N x H x W and
gives pixels at `ignore_index` exactly zero weight and zero gradient."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from semseg.classes import ClassSet
from semseg.config import LossConfig
from semseg.errors import SemsegError


class CrossEntropyLoss(nn.Module):
    """Pixel-wise cross-entropy, averaged over non-ignored pixels (weighted mean when
    `class_weights` is given), with optional label smoothing."""

    def __init__(
        self,
        ignore_index: int = 255,
        class_weights: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing
        self.register_buffer("class_weights", class_weights, persistent=False)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total = F.cross_entropy(
            logits,
            target,
            weight=self.class_weights,
            ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing,
            reduction="sum",
        )
        # Divide by the (weighted) count of valid pixels ourselves: the same value as torch's
        # "mean", but an all-ignore batch gives 0 instead of NaN, with no host sync.
        valid = target != self.ignore_index
        if self.class_weights is None:
            denominator = valid.sum()
        else:
            safe_target = torch.where(valid, target, 0)
            denominator = (self.class_weights[safe_target] * valid).sum()
        return total / denominator.clamp(min=1e-12)


LossBuilder = Callable[[LossConfig, ClassSet], nn.Module]


def _cross_entropy(config: LossConfig, classes: ClassSet) -> nn.Module:
    return CrossEntropyLoss(
        ignore_index=classes.ignore_index,
        class_weights=_class_weights(config, classes),
        label_smoothing=config.label_smoothing,
    )


LOSSES: dict[str, LossBuilder] = {"cross_entropy": _cross_entropy}


def build_loss(config: LossConfig, classes: ClassSet) -> nn.Module:
    if config.name not in LOSSES:
        raise SemsegError(
            f"config key 'loss.name': unknown loss {config.name!r}; "
            f"available: {', '.join(sorted(LOSSES))}"
        )
    return LOSSES[config.name](config, classes)


def _class_weights(config: LossConfig, classes: ClassSet) -> torch.Tensor | None:
    if config.class_weights is None:
        return None
    if config.class_weights == "auto":
        raise ValueError("class_weights=auto must be resolved from dataset statistics first")
    if len(config.class_weights) != classes.num_classes:
        raise SemsegError(
            f"config key 'loss.class_weights': {len(config.class_weights)} weights for "
            f"{classes.num_classes} classes ({', '.join(classes.names)}); give one per class"
        )
    if any(w < 0 for w in config.class_weights) or not any(w > 0 for w in config.class_weights):
        raise SemsegError("config key 'loss.class_weights': weights must be >= 0, not all 0")
    return torch.tensor(config.class_weights, dtype=torch.float32)
