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

    def decay_at(self, step: int) -> float:
        """The decay after `step` optimiser steps, ramped up from 0.1: with a fixed 0.999
        a 10-minute CamVid run (370 steps) kept 69 % of the random initial weights in the
        average and validated at 9.7 mIoU instead of 57.5."""
        return min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Average in `model` after its `step`-th optimiser step."""
        weight = 1 - self.decay_at(step)
        for average, current in zip(
            self.module.state_dict().values(), model.state_dict().values(), strict=True
        ):
            if average.dtype.is_floating_point:
                average.lerp_(current.detach(), weight)
            else:  # e.g. BatchNorm's step counter
                average.copy_(current)
