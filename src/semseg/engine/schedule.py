"""Optimisers and the learning-rate schedule (warmup, then poly / cosine / plateau)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from semseg.config import OptimConfig


def build_optimizer(model: nn.Module, optim: OptimConfig) -> torch.optim.Optimizer:
    # Weight decay on norm scales and biases only shrinks them toward 0; leave them out.
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [
        {"params": decay, "weight_decay": optim.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if optim.name == "sgd":
        return torch.optim.SGD(groups, lr=optim.lr, momentum=optim.momentum)
    return torch.optim.AdamW(groups, lr=optim.lr)


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
        return self.optimizer.param_groups[0]["lr"]

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
        for group in self.optimizer.param_groups:
            group["lr"] = lr

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
