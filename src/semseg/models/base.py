"""Behaviour every segmentation model shares: any input size in, logits of that size out."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ModelOutput = torch.Tensor | dict[str, torch.Tensor]


class SegmentationModel(nn.Module):
    """Subclasses implement `forward_padded` for inputs whose sides are multiples of
    `size_divisor`, returning logits at that padded size; `forward` pads any H x W and
    crops back. With an auxiliary head (`aux_head=True` in every builder) a model returns
    {"out": ..., "aux": ...} while training, for deep supervision; plain logits otherwise.
    """

    size_divisor: int = 1

    def __init__(self) -> None:
        super().__init__()
        # Per-class logit offsets fitted after training (engine.calibrate); not in the
        # state_dict: checkpoints carry them as `class_bias`, so older files still load.
        self.register_buffer("class_bias", None, persistent=False)

    def set_class_bias(self, bias: torch.Tensor | None) -> None:
        """Add `bias` (C values) to the logits of every forward pass; None removes it."""
        self.class_bias = None if bias is None else bias.detach().float().reshape(1, -1, 1, 1)

    def with_aux(self, logits: torch.Tensor, aux_feature: torch.Tensor, images: torch.Tensor):
        """The model's output: logits, plus the auxiliary head's logits while training."""
        # Not a class attribute: nn.Module keeps submodules in _modules, and a class-level
        # `aux = None` would shadow them.
        head = getattr(self, "aux", None)
        if head is not None and self.training:
            return {"out": logits, "aux": resize_to(head(aux_feature), images)}
        return logits

    def forward(self, images: torch.Tensor) -> ModelOutput:
        height, width = images.shape[-2:]
        pad_h = (-height) % self.size_divisor
        pad_w = (-width) % self.size_divisor
        if pad_h or pad_w:
            # Zero padding in normalised space is the dataset mean colour.
            images = F.pad(images, (0, pad_w, 0, pad_h))
        output = self.forward_padded(images)  # N x C x H' x W' (or a dict of them)
        if isinstance(output, dict):
            output = {name: logits[..., :height, :width] for name, logits in output.items()}
            return output | {"out": self._biased(output["out"])}
        return self._biased(output[..., :height, :width])

    def _biased(self, logits: torch.Tensor) -> torch.Tensor:
        return logits if self.class_bias is None else logits + self.class_bias.to(logits.device)

    def forward_padded(self, images: torch.Tensor) -> ModelOutput:
        raise NotImplementedError


def conv_bn_relu(
    in_channels: int, out_channels: int, kernel_size: int = 3, dilation: int = 1
) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            padding=dilation * (kernel_size // 2),
            dilation=dilation,
            bias=False,
        ),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def resize_to(x: torch.Tensor, like: torch.Tensor | tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of features or logits (never of label masks)."""
    size = like if isinstance(like, tuple) else tuple(like.shape[-2:])
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def aux_head(in_channels: int, num_classes: int) -> nn.Sequential:
    """An FCN head (3x3 conv, BN, ReLU, dropout, 1x1 classifier) for deep supervision."""
    middle = max(16, in_channels // 4)
    return nn.Sequential(
        conv_bn_relu(in_channels, middle), nn.Dropout(0.1), nn.Conv2d(middle, num_classes, 1)
    )
