"""Turning images into logits; one place shared by eval, predict and training validation."""

from __future__ import annotations

import torch
from torch import nn


@torch.inference_mode()
def predict_logits(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Whole-image inference: N x 3 x H x W normalised images -> N x C x H x W logits."""
    return model(images)
