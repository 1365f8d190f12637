"""Exponential moving average of model weights (evaluated and saved instead of the raw
weights when `train.ema_decay` is set)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class ModelEMA:
    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        for parameter in self.module.parameters():
            parameter.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for average, current in zip(
            self.module.state_dict().values(), model.state_dict().values(), strict=True
        ):
            if average.dtype.is_floating_point:
                average.lerp_(current.detach(), 1 - self.decay)
            else:  # e.g. BatchNorm's step counter
                average.copy_(current)
