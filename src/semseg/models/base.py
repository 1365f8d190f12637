"""Behaviour every segmentation model shares: any input size in, logits of that size out."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SegmentationModel(nn.Module):
    """Subclasses implement `forward_padded` for inputs whose sides are multiples of
    `size_divisor`; `forward` pads any H x W up to that multiple and crops the logits back.
    """

    size_divisor: int = 1

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        pad_h = (-height) % self.size_divisor
        pad_w = (-width) % self.size_divisor
        if pad_h or pad_w:
            # Zero padding in normalised space is the dataset mean colour.
            images = F.pad(images, (0, pad_w, 0, pad_h))
        logits = self.forward_padded(images)  # N x C x H' x W'
        return logits[..., :height, :width]

    def forward_padded(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError
