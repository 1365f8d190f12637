"""The training steps the benchmarks time: the classic tutorials' plain step (the
baseline semseg is compared against) and semseg's own TrainingStep, both on the CPU."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from semseg.classes import ClassSet
from semseg.config import LossConfig, OptimConfig
from semseg.engine.epoch import TrainingStep
from semseg.engine.precision import cpu_autocast_exceptions
from semseg.engine.schedule import LRSchedule, build_optimizer
from semseg.losses import build_loss

Step = Callable[[torch.Tensor, torch.Tensor], float]


def plain_step(model: nn.Module, ignore_index: int) -> Step:
    """fp32, default memory layout, AdamW, plain cross-entropy, and the loss read back
    every step. One optimiser step per call on (images, masks); returns the loss."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    criterion = nn.CrossEntropyLoss(ignore_index=ignore_index)

    def step(images: torch.Tensor, masks: torch.Tensor) -> float:
        optimizer.zero_grad()
        loss = criterion(model(images), masks)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def semseg_step(
    model: nn.Module,
    num_classes: int,
    amp_dtype: torch.dtype | None,
    loss: LossConfig | None = None,
    optim: OptimConfig | None = None,
    ignore_index: int = 255,
    class_weights: Sequence[float] | None = None,
    compile: bool = False,
    depthwise_fp32: bool = True,
) -> TrainingStep:
    """semseg's training step as `semseg train` builds it on the CPU (the caller chooses
    the memory layout and precision: `amp_dtype`, and whether depthwise convolutions step
    out of bf16 autocast), with a schedule long enough never to end while timed."""
    cpu_autocast_exceptions(model, depthwise=depthwise_fp32)
    loss, optim = loss or LossConfig(), optim or OptimConfig()
    classes = ClassSet(tuple(f"c{i}" for i in range(num_classes)), ignore_index=ignore_index)
    optimizer = build_optimizer(model, optim)
    return TrainingStep(
        model,
        build_loss(loss, classes, list(class_weights) if class_weights else None),
        optimizer,
        LRSchedule(optimizer, optim, total_steps=10_000, warmup_steps=0),
        torch.device("cpu"),
        amp_dtype=amp_dtype,
        compile=compile,
    )
