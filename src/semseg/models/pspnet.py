"""PSPNet (Zhao et al., "Pyramid Scene Parsing Network", 2017).

A dilated encoder (output stride 8) and the pyramid pooling module: the deepest feature
averaged over 1x1, 2x2, 3x3 and 6x6 grids, each reduced by a 1x1 conv to a quarter of
its channels, upsampled back and concatenated with the feature, then fused by a 3x3
conv and classified. `PyramidPooling` is also UPerNet's and Fast-SCNN's context module.
"""

from __future__ import annotations

import torch
from torch import nn

from semseg.models.base import (
    AuxiliaryHead,
    Decoded,
    SegmentationModel,
    adaptive_avg_pool,
    conv_bn_relu,
    resize_to,
)
from semseg.models.encoders import build_encoder
from semseg.models.registry import register_model


class PyramidPooling(nn.Module):
    """The feature pooled to each of `bins` grids, 1x1 conv + BN + ReLU, upsampled and
    concatenated with the input, then a 3x3 conv + BN + ReLU to `out_channels`."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        bins: tuple[int, ...] = (1, 2, 3, 6),
        branch_channels: int | None = None,
    ) -> None:
        super().__init__()
        self.bins = bins
        branch = branch_channels or max(8, in_channels // len(bins))
        self.branches = nn.ModuleList(conv_bn_relu(in_channels, branch, 1) for _ in bins)
        self.fuse = conv_bn_relu(in_channels + len(bins) * branch, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = [
            resize_to(branch(adaptive_avg_pool(x, bins)), x)
            for branch, bins in zip(self.branches, self.bins, strict=True)
        ]
        return self.fuse(torch.cat([x, *pooled], dim=1))


class PSPNet(SegmentationModel):
    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        encoder: str,
        pretrained: bool,
        output_stride: int,
        aux_head: bool = False,
        width: int = 512,
    ) -> None:
        super().__init__()
        self.use_encoder(build_encoder(encoder, in_channels, pretrained, output_stride))
        channels = self.encoder.out_channels
        self.context = PyramidPooling(channels[-1], width)
        self.classifier = nn.Sequential(nn.Dropout2d(0.1), nn.Conv2d(width, num_classes, 1))
        self.aux_head = AuxiliaryHead(channels[-2], num_classes) if aux_head else None

    def forward_padded(self, images: torch.Tensor) -> Decoded:
        features = self.encoder(images)
        logits = self.classifier(self.context(features[-1]))
        return Decoded(resize_to(logits, images), features[-2])


@register_model
def pspnet(
    num_classes: int,
    in_channels: int = 3,
    encoder: str = "tv_resnet50",
    output_stride: int = 8,
    pretrained: bool = False,
    aux_head: bool = False,
    base_width: int = 512,
) -> PSPNet:
    """PSPNet: pyramid pooling (1, 2, 3, 6 bins) on a dilated ResNet-50 (output stride 8)."""
    return PSPNet(
        num_classes, in_channels, encoder, pretrained, output_stride, aux_head, base_width
    )
