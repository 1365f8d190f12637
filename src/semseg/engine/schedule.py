"""Optimisers and the learning-rate schedule (warmup, then poly / cosine / plateau)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from semseg.config import OptimConfig
from semseg.errors import SemsegError


def build_optimizer(model: nn.Module, optim: OptimConfig) -> torch.optim.Optimizer:
    """SGD or AdamW over the trainable parameters, in groups that carry their own weight
    decay and `lr_scale` (the share of the scheduled rate that LRSchedule gives them)."""
    groups = []
    for parameters, lr_scale in _parameters_by_lr_scale(model, optim.encoder_lr_scale):
        trainable = [p for p in parameters if p.requires_grad]
        # Weight decay on norm scales and biases only shrinks them toward 0; leave them out.
        groups += [
            {
                "params": [p for p in trainable if p.ndim > 1],
                "weight_decay": optim.weight_decay,
                "lr_scale": lr_scale,
            },
            {
                "params": [p for p in trainable if p.ndim <= 1],
                "weight_decay": 0.0,
                "lr_scale": lr_scale,
            },
        ]
    if optim.name == "sgd":
        return torch.optim.SGD(groups, lr=optim.lr, momentum=optim.momentum)
    return torch.optim.AdamW(groups, lr=optim.lr)


def _parameters_by_lr_scale(
    model: nn.Module, encoder_lr_scale: float
) -> list[tuple[list[nn.Parameter], float]]:
    """(parameters, learning-rate scale) pairs: the whole model at 1, or, with
    `optim.encoder_lr_scale`, the pretrained encoder at that scale and the rest at 1
    (a new decoder learns from scratch while the encoder's features are only adjusted)."""
    if encoder_lr_scale == 1.0:
        return [(list(model.parameters()), 1.0)]
    encoder = getattr(model, "encoder", None)
    if not isinstance(encoder, nn.Module):
        raise SemsegError(
            "config key 'optim.encoder_lr_scale': this model has no encoder (use "
            "model.encoder=..., e.g. efficientnet_lite0), or remove the key"
        )
    in_encoder = {id(p) for p in encoder.parameters()}
    rest = [p for p in model.parameters() if id(p) not in in_encoder]
    return [(list(encoder.parameters()), encoder_lr_scale), (rest, 1.0)]


class LRSchedule:
    """Sets the learning rate every step: linear warmup, then the configured decay.

    poly and cosine decay over all training steps (or over a time budget, through
    `progress`); plateau divides the rate by
    `1 / plateau_factor` when validation mIoU has not improved for `plateau_patience`
    validations. The state is plain numbers, saved in checkpoints for exact resumption.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        optim: OptimConfig,
        total_steps: int,
        warmup_steps: int,
        progress: Callable[[], float] | None = None,
    ) -> None:
        self.optimizer = optimizer
        self.optim = optim
        self.total_steps = max(1, total_steps)
        self.warmup_steps = warmup_steps
        self.progress = progress  # e.g. the share of a time budget spent; default: steps
        self.step_count = 0
        self.plateau_reductions = 0
        self.plateau_best = -math.inf
        self.plateau_waited = 0
        self._apply()

    @property
    def lr(self) -> float:
        """The scheduled rate (groups with an `lr_scale` get that share of it)."""
        return self.scheduled_lr

    def step(self) -> None:
        self.step_count += 1
        self._apply()

    def on_validation(self, miou: float) -> None:
        if self.optim.schedule != "plateau" or math.isnan(miou):
            return
        if miou > self.plateau_best:
            self.plateau_best, self.plateau_waited = miou, 0
        else:
            self.plateau_waited += 1
            if self.plateau_waited > self.optim.plateau_patience:
                self.plateau_reductions += 1
                self.plateau_waited = 0
                self._apply()

    def factor(self) -> float:
        step = self.step_count
        warmup = min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps else 1.0
        progress = self.progress() if self.progress else min(1.0, step / self.total_steps)
        schedule = self.optim.schedule
        if schedule == "poly":
            decay = (1 - progress) ** self.optim.poly_power
        elif schedule == "cosine":
            decay = 0.5 * (1 + math.cos(math.pi * progress))
        elif schedule == "plateau":
            decay = self.optim.plateau_factor**self.plateau_reductions
        else:
            decay = 1.0
        return warmup * decay

    def _apply(self) -> None:
        lr = self.optim.min_lr + (self.optim.lr - self.optim.min_lr) * self.factor()
        self.scheduled_lr = lr
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)

    def state_dict(self) -> dict[str, Any]:
        return {
            "step_count": self.step_count,
            "plateau_reductions": self.plateau_reductions,
            "plateau_best": self.plateau_best,
            "plateau_waited": self.plateau_waited,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_count = state["step_count"]
        self.plateau_reductions = state["plateau_reductions"]
        self.plateau_best = state["plateau_best"]
        self.plateau_waited = state["plateau_waited"]
        self._apply()
