"""LR-ASPP (Howard et al., "Searching for MobileNetV3", 2019): the real-time model.

On the dilated MobileNetV3 (output stride 16): the deepest features pass a 1x1 conv +
BN + ReLU, gated by a global-pooling sigmoid branch; upsampled to the stride-8 features,
a 1x1 classifier on each is summed and upsampled to the input. Chosen as semseg's
real-time model for its measured CPU speed (see `semseg models --measure` and
benchmarks/speed.py).
"""

from __future__ import annotations

import torch
from torch import nn

from semseg.models.base import AuxiliaryHead, Decoded, SegmentationModel, resize_to
from semseg.models.encoders import build_encoder
from semseg.models.registry import register_model


class LRASPP(SegmentationModel):
    # No padding: both branches are resized onto the stride-8 features and the logits
    # onto the input, so any H x W works as is; padding 360 to 384 rows cost 25 % of
    # batch-1 CPU throughput (benchmarks/speed.py).
    size_divisor = 1

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        encoder: str,
        pretrained: bool,
        output_stride: int,
        aux_head: bool = False,
        inter_channels: int = 128,
    ) -> None:
        super().__init__()
        encoder_net = build_encoder(encoder, in_channels, pretrained, output_stride)
        self.use_encoder(encoder_net, size_divisor=self.size_divisor)
        self.low_index = self.encoder.reductions.index(8)
        high, low = self.encoder.out_channels[-1], self.encoder.out_channels[self.low_index]
        self.cbr = nn.Sequential(
            nn.Conv2d(high, inter_channels, 1, bias=False),
            nn.BatchNorm2d(inter_channels),
            nn.ReLU(inplace=True),
        )
        self.scale = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(high, inter_channels, 1, bias=False), nn.Sigmoid()
        )
        self.low_classifier = nn.Conv2d(low, num_classes, 1)
        self.high_classifier = nn.Conv2d(inter_channels, num_classes, 1)
        self.aux_head = (
            AuxiliaryHead(self.encoder.out_channels[-2], num_classes) if aux_head else None
        )

    def forward_padded(self, images: torch.Tensor) -> Decoded:
        features = self.encoder(images)
        high, low = features[-1], features[self.low_index]  # strides 16 and 8
        x = self.cbr(high) * self.scale(high)
        logits = self.low_classifier(low) + self.high_classifier(resize_to(x, low))
        return Decoded(resize_to(logits, images), features[-2])


@register_model
def lraspp(
    num_classes: int,
    in_channels: int = 3,
    encoder: str = "tv_mobilenet_v3_large",
    pretrained: bool = False,
    output_stride: int = 16,
    aux_head: bool = False,
) -> LRASPP:
    """LR-ASPP on MobileNetV3-Large: the fast model for CPUs and edge devices."""
    return LRASPP(num_classes, in_channels, encoder, pretrained, output_stride, aux_head)
