"""Fast-SCNN (Poudel et al., 2019): a two-branch real-time network trained from scratch.

Learning to downsample (3x3 conv, two depthwise-separable convs: stride 8, 64 channels)
feeds both the high-resolution skip and the global feature extractor (inverted-residual
bottlenecks 64-96-128 down to stride 32, then pyramid pooling). Feature fusion adds the
1x1-projected skip and the upsampled global features (depthwise 3x3 conv, dilation 4,
then 1x1); the classifier is two depthwise-separable convs and a 1x1 conv.
"""

from __future__ import annotations

import torch
from torch import nn

from semseg.models.base import AuxiliaryHead, Decoded, SegmentationModel, conv_bn_relu, resize_to
from semseg.models.pspnet import PyramidPooling
from semseg.models.registry import register_model


def separable(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """Depthwise 3x3 conv + BN + ReLU, then pointwise 1x1 conv + BN + ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, in_channels, 3, stride, 1, groups=in_channels, bias=False),
        nn.BatchNorm2d(in_channels),
        nn.ReLU(inplace=True),
        conv_bn_relu(in_channels, out_channels, 1),
    )


class InvertedResidual(nn.Module):
    """MobileNetV2's bottleneck: 1x1 expansion, depthwise 3x3, linear 1x1 projection."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int = 6):
        super().__init__()
        hidden = in_channels * expansion
        self.block = nn.Sequential(
            conv_bn_relu(in_channels, hidden, 1),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.residual else self.block(x)


def bottlenecks(in_channels: int, out_channels: int, count: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        *(
            InvertedResidual(
                in_channels if i == 0 else out_channels, out_channels, stride if i == 0 else 1
            )
            for i in range(count)
        )
    )


class FastSCNN(SegmentationModel):
    size_divisor = 32

    def __init__(self, num_classes: int, in_channels: int, aux_head: bool, width: int) -> None:
        super().__init__()
        w = width // 2  # 64 at the paper's width of 128
        self.downsample = nn.Sequential(
            conv_bn_relu(in_channels, w // 2, stride=2),
            separable(w // 2, 3 * w // 4, 2),
            separable(3 * w // 4, w, 2),
        )
        self.global_features = nn.Sequential(
            bottlenecks(w, w, 3, 2),
            bottlenecks(w, 3 * w // 2, 3, 2),
            bottlenecks(3 * w // 2, 2 * w, 3, 1),
        )
        self.context = PyramidPooling(2 * w, 2 * w)
        self.skip = nn.Sequential(nn.Conv2d(w, width, 1, bias=False), nn.BatchNorm2d(width))
        self.lift = nn.Sequential(
            nn.Conv2d(2 * w, 2 * w, 3, padding=4, dilation=4, groups=2 * w, bias=False),
            nn.BatchNorm2d(2 * w),
            nn.ReLU(inplace=True),
            nn.Conv2d(2 * w, width, 1, bias=False),
            nn.BatchNorm2d(width),
        )
        self.classifier = nn.Sequential(
            separable(width, width),
            separable(width, width),
            nn.Dropout2d(0.1),
            nn.Conv2d(width, num_classes, 1),
        )
        self.aux_head = AuxiliaryHead(2 * w, num_classes) if aux_head else None

    def forward_padded(self, images: torch.Tensor) -> Decoded:
        high = self.downsample(images)  # stride 8
        low = self.context(self.global_features(high))  # stride 32
        fused = torch.relu(self.skip(high) + resize_to(self.lift(low), high))
        return Decoded(resize_to(self.classifier(fused), images), low)


@register_model
def fast_scnn(
    num_classes: int, in_channels: int = 3, aux_head: bool = False, base_width: int = 128
) -> FastSCNN:
    """Fast-SCNN: learning-to-downsample + global feature extractor, from scratch."""
    return FastSCNN(num_classes, in_channels, aux_head, base_width)
