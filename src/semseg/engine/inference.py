"""Turning images into logits; one place shared by eval, predict and training validation."""

from __future__ import annotations

import torch
from torch import nn

from semseg.engine.precision import to_model_layout


@torch.inference_mode()
def predict_logits(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Whole-image inference: N x C_in x H x W normalised images -> N x C x H x W logits."""
    return model(to_model_layout(model, images))
