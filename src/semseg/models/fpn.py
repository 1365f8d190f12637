"""FPN semantic segmentation (Panoptic FPN's semantic branch, Kirillov et al., 2019).

Lateral 1x1 convs and a top-down pathway build 256-channel P2..P5 (strides 4..32); each
level is brought to stride 4 by 3x3 conv + GroupNorm + ReLU + 2x upsampling steps, the
levels are summed, classified by a 1x1 conv and upsampled 4x. GroupNorm keeps training
with small batches stable.
"""

from __future__ import annotations

import torch
from torch import nn

from semseg.models.base import AuxiliaryHead, Decoded, SegmentationModel, resize_to
from semseg.models.encoders import build_encoder
from semseg.models.registry import register_model


def _conv_gn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.GroupNorm(32 if out_channels % 32 == 0 else 1, out_channels),
        nn.ReLU(inplace=True),
    )


class _Upsampling(nn.Module):
    """conv + GN + ReLU, then 2x upsampling, repeated until stride 4."""

    def __init__(self, in_channels: int, out_channels: int, steps: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            _conv_gn_relu(in_channels if i == 0 else out_channels, out_channels)
            for i in range(max(1, steps))
        )
        self.steps = steps

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return resize_to(x, target)


class FPN(SegmentationModel):
    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        encoder: str,
        pretrained: bool,
        aux_head: bool = False,
        pyramid_width: int = 256,
        segmentation_width: int = 128,
    ) -> None:
        super().__init__()
        self.use_encoder(build_encoder(encoder, in_channels, pretrained))
        reductions = self.encoder.reductions
        # Pyramid levels: the features from stride 4 down (P2..P5).
        self.levels = [i for i, r in enumerate(reductions) if r >= 4]
        channels = [self.encoder.out_channels[i] for i in self.levels]
        self.lateral = nn.ModuleList(nn.Conv2d(c, pyramid_width, 1) for c in channels)
        self.upsampling = nn.ModuleList(
            _Upsampling(
                pyramid_width, segmentation_width, steps=(reductions[i] // 4).bit_length() - 1
            )
            for i in self.levels
        )
        self.classifier = nn.Conv2d(segmentation_width, num_classes, 1)
        self.aux_head = AuxiliaryHead(channels[-2], num_classes) if aux_head else None

    def forward_padded(self, images: torch.Tensor) -> Decoded:
        encoded = self.encoder(images)
        features = [encoded[i] for i in self.levels]  # strides 4 .. 32
        pyramid = [lateral(f) for lateral, f in zip(self.lateral, features, strict=True)]
        for i in range(len(pyramid) - 2, -1, -1):  # top-down: add the coarser level
            pyramid[i] = pyramid[i] + resize_to(pyramid[i + 1], pyramid[i])
        fused = sum(up(p, pyramid[0]) for up, p in zip(self.upsampling, pyramid, strict=True))
        return Decoded(resize_to(self.classifier(fused), images), features[-2])


@register_model
def fpn(
    num_classes: int,
    in_channels: int = 3,
    encoder: str = "tv_resnet50",
    pretrained: bool = False,
    aux_head: bool = False,
) -> FPN:
    """FPN semantic head on a ResNet-50 (any encoder with stride-4..32 features)."""
    return FPN(num_classes, in_channels, encoder, pretrained, aux_head=aux_head)
