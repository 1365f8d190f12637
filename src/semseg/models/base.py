"""Behaviour every segmentation model shares: any input size in, logits of that size out,
and an optional auxiliary head that only the training step asks for."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

Normalization = tuple[tuple[float, float, float], tuple[float, float, float]]


class Decoded(NamedTuple):
    """What `forward_padded` returns: logits at the padded input size, and the feature
    map the auxiliary head reads (None for a model that offers none)."""

    logits: torch.Tensor
    aux_feature: torch.Tensor | None = None


class SegmentationModel(nn.Module):
    """Subclasses implement `forward_padded` for inputs whose sides are multiples of
    `size_divisor`; `forward` pads any H x W, crops back and returns the logits, always.

    With an auxiliary head (`aux_head=True` in every builder; deep supervision, as
    torchvision's aux classifier) `forward_with_aux` also returns the head's logits. Only
    the training step calls it; evaluation, prediction and export use `forward`.
    """

    size_divisor: int = 1
    #: The (mean, std) input normalisation the model's weights expect, or None when any
    #: will do (trained from scratch). Models on an encoder take the encoder's.
    normalization: Normalization | None = None

    def __init__(self) -> None:
        super().__init__()
        self.aux_head: nn.Module | None = None
        # Per-class logit offsets fitted after training (engine.calibrate); not in the
        # state_dict: checkpoints carry them as `class_bias`, so older files still load.
        self.register_buffer("class_bias", None, persistent=False)

    def use_encoder(self, encoder: nn.Module, size_divisor: int | None = None) -> None:
        """Make `encoder` the model's (`self.encoder`), with the input normalisation of its
        weights; inputs are padded to `size_divisor`, by default its output stride."""
        self.encoder = encoder
        self.normalization = encoder.normalization
        self.size_divisor = size_divisor or encoder.output_stride

    def set_class_bias(self, bias: torch.Tensor | None) -> None:
        """Add `bias` (C values) to the logits of every forward pass; None removes it."""
        self.class_bias = None if bias is None else bias.detach().float().reshape(1, -1, 1, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """N x C_in x H x W normalised images -> N x C x H x W logits."""
        return self._run(images, with_aux=False)[0]

    def forward_with_aux(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The training path: the logits and the auxiliary head's logits (N x C x H x W),
        or None in their place for a model built without an auxiliary head."""
        return self._run(images, with_aux=True)

    def forward_padded(self, images: torch.Tensor) -> Decoded:
        raise NotImplementedError

    def _run(
        self, images: torch.Tensor, with_aux: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        height, width = images.shape[-2:]
        divisor = self.size_divisor
        # Rounded up to the divisor, written so that a tracer can bound it (ceil division).
        pad_h = (height + divisor - 1) // divisor * divisor - height
        pad_w = (width + divisor - 1) // divisor * divisor - width
        # Zero padding in normalised space is the dataset mean colour. A graph traced with
        # dynamic sizes (ONNX export) always pads: its sizes are symbols, not numbers.
        if symbolic(height, width) or pad_h or pad_w:
            images = F.pad(images, (0, pad_w, 0, pad_h))
        decoded = self.forward_padded(images)  # logits N x C x H' x W'
        logits = crop(decoded.logits, height, width)
        if self.class_bias is not None:
            logits = logits + self.class_bias.to(logits.device)
        aux = None
        if with_aux and self.aux_head is not None:
            aux = crop(resize_to(self.aux_head(decoded.aux_feature), images), height, width)
        return logits, aux


def conv_bn_relu(
    in_channels: int, out_channels: int, kernel_size: int = 3, dilation: int = 1, stride: int = 1
) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
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
    # Resizing to the same size is the identity; a graph traced with dynamic sizes
    # resizes anyway, as it cannot compare symbolic sizes.
    if not symbolic(*x.shape[-2:], *size) and tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def crop(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The top-left height x width of N x C x H' x W' maps (a view). With symbolic sizes
    it gathers rows and columns instead: slicing would make the traced graph assume
    whether any padding happened, and hold for those sizes only."""
    if not symbolic(height, width):
        return x[..., :height, :width]
    rows = torch.arange(height, device=x.device)
    columns = torch.arange(width, device=x.device)
    return x.index_select(-2, rows).index_select(-1, columns)


def adaptive_avg_pool(x: torch.Tensor, bins: int) -> torch.Tensor:
    """`F.adaptive_avg_pool2d(x, bins)` (the same bins, equal to rounding) as two small
    matrix products. Written so because exported graphs with dynamic sizes get adaptive
    pooling wrong (onnxruntime: out-of-bounds Gather for most sizes); this form exports."""
    rows = _bin_average(x.shape[-2], bins, x)
    columns = _bin_average(x.shape[-1], bins, x)
    return torch.einsum("ih,nchw,jw->ncij", rows, x, columns)


def _bin_average(size: int, bins: int, like: torch.Tensor) -> torch.Tensor:
    """bins x size: row i averages positions floor(i size / bins) .. ceil((i+1) size / bins)."""
    positions = torch.arange(size, device=like.device)
    index = torch.arange(bins, device=like.device)
    starts = index * size // bins
    ends = ((index + 1) * size + bins - 1) // bins
    inside = (positions[None] >= starts[:, None]) & (positions[None] < ends[:, None])
    inside = inside.to(like.dtype)
    return inside / inside.sum(1, keepdim=True)


def symbolic(*sizes: int | torch.SymInt) -> bool:
    """Whether any size is a symbol (a graph traced with dynamic shapes), not a number."""
    return any(isinstance(size, torch.SymInt) for size in sizes)


class AuxiliaryHead(nn.Sequential):
    """An FCN head (3x3 conv, BN, ReLU, dropout, 1x1 classifier) on an intermediate
    feature, for deep supervision during training."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        middle = max(16, in_channels // 4)
        super().__init__(
            conv_bn_relu(in_channels, middle), nn.Dropout(0.1), nn.Conv2d(middle, num_classes, 1)
        )
