"""The training step of the classic tutorials, the baseline the benchmarks compare
semseg against: fp32, default memory layout, AdamW, plain cross-entropy, and the loss
read back every step."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def plain_step(
    model: nn.Module, ignore_index: int
) -> Callable[[torch.Tensor, torch.Tensor], float]:
    """One optimiser step per call on (images, masks); returns the loss."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    criterion = nn.CrossEntropyLoss(ignore_index=ignore_index)

    def step(images: torch.Tensor, masks: torch.Tensor) -> float:
        optimizer.zero_grad()
        loss = criterion(model(images), masks)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step
