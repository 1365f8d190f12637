"""BiSeNetV2 (Yu et al., 2021): a real-time two-pathway network trained from scratch.

Detail branch: wide, shallow 3x3 convs down to stride 8 (64-64-128 channels). Semantic
branch: a stem (conv and max-pool paths), gather-and-expand layers (3x3 conv, depthwise
expansion x6, linear 1x1, residual) down to stride 32, and a context embedding (global
average pooling added back). Bilateral guided aggregation lets each branch gate the
other at both resolutions; a 3x3 conv head classifies at stride 8. The paper's booster
heads on the semantic stages are `aux_head` here: one, on the stride-16 stage.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from semseg.models.base import AuxiliaryHead, Decoded, SegmentationModel, conv_bn_relu, resize_to
from semseg.models.registry import register_model


def conv_bn(in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1, groups: int = 1):
    return nn.Sequential(
        nn.Conv2d(
            in_channels, out_channels, kernel, stride, kernel // 2, groups=groups, bias=False
        ),
        nn.BatchNorm2d(out_channels),
    )


class GatherExpand(nn.Module):
    """GE layer: 3x3 conv, depthwise 3x3 expansion (x6; stride 2 when downsampling,
    followed by a second depthwise conv), linear 1x1 projection, plus the shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        hidden = in_channels * 6
        layers = [
            conv_bn_relu(in_channels, in_channels),
            conv_bn(in_channels, hidden, 3, stride, in_channels),
        ]
        if stride == 2:
            layers.append(conv_bn(hidden, hidden, 3, 1, hidden))
        layers.append(conv_bn(hidden, out_channels, 1))
        self.body = nn.Sequential(*layers)
        self.shortcut = None
        if stride == 2 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                conv_bn(in_channels, in_channels, 3, stride, in_channels),
                conv_bn(in_channels, out_channels, 1),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.shortcut is None else self.shortcut(x)
        return F.relu(self.body(x) + shortcut)


class Stem(nn.Module):
    def __init__(self, in_channels: int, width: int) -> None:
        super().__init__()
        self.conv = conv_bn_relu(in_channels, width, stride=2)
        self.left = nn.Sequential(
            conv_bn_relu(width, width // 2, 1), conv_bn_relu(width // 2, width, stride=2)
        )
        self.right = nn.MaxPool2d(3, 2, 1)
        self.fuse = conv_bn_relu(2 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return self.fuse(torch.cat([self.left(x), self.right(x)], dim=1))


class ContextEmbedding(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels)
        self.squeeze = conv_bn_relu(channels, channels, 1)
        self.out = conv_bn_relu(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        context = self.squeeze(self.norm(x.mean((2, 3), keepdim=True)))
        return self.out(x + context)


class GuidedAggregation(nn.Module):
    """BGA: detail (stride 8) and semantic (stride 32) features gate each other."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.detail_keep = nn.Sequential(
            conv_bn(channels, channels, 3, 1, channels), nn.Conv2d(channels, channels, 1)
        )
        self.detail_down = nn.Sequential(
            conv_bn(channels, channels, 3, 2), nn.AvgPool2d(3, 2, 1, ceil_mode=False)
        )
        self.semantic_keep = nn.Sequential(
            conv_bn(channels, channels, 3, 1, channels), nn.Conv2d(channels, channels, 1)
        )
        self.semantic_up = conv_bn(channels, channels)
        self.out = conv_bn_relu(channels, channels)

    def forward(self, detail: torch.Tensor, semantic: torch.Tensor) -> torch.Tensor:
        up = torch.sigmoid(resize_to(self.semantic_up(semantic), detail))
        high = self.detail_keep(detail) * up
        low = self.detail_down(detail)
        low = resize_to(low, semantic) * torch.sigmoid(self.semantic_keep(semantic))
        return self.out(high + resize_to(low, detail))


class BiSeNetV2(SegmentationModel):
    size_divisor = 32

    def __init__(
        self, num_classes: int, in_channels: int, aux_head: bool, width: int, head_width: int
    ) -> None:
        super().__init__()
        w = width  # 64 in the paper
        self.detail = nn.Sequential(
            conv_bn_relu(in_channels, w, stride=2),
            conv_bn_relu(w, w),
            conv_bn_relu(w, w, stride=2),
            conv_bn_relu(w, w),
            conv_bn_relu(w, w),
            conv_bn_relu(w, 2 * w, stride=2),
            conv_bn_relu(2 * w, 2 * w),
            conv_bn_relu(2 * w, 2 * w),
        )
        s = w // 4  # the semantic branch is a quarter as wide (lambda = 1/4)
        self.stem = Stem(in_channels, s)
        self.stage3 = nn.Sequential(GatherExpand(s, 2 * s, 2), GatherExpand(2 * s, 2 * s))
        self.stage4 = nn.Sequential(GatherExpand(2 * s, 4 * s, 2), GatherExpand(4 * s, 4 * s))
        self.stage5 = nn.Sequential(
            GatherExpand(4 * s, 2 * w, 2), *(GatherExpand(2 * w, 2 * w) for _ in range(3))
        )
        self.context = ContextEmbedding(2 * w)
        self.aggregate = GuidedAggregation(2 * w)
        self.head = nn.Sequential(
            conv_bn_relu(2 * w, head_width),
            nn.Dropout2d(0.1),
            nn.Conv2d(head_width, num_classes, 1),
        )
        self.aux_head = AuxiliaryHead(4 * s, num_classes) if aux_head else None

    def forward_padded(self, images: torch.Tensor) -> Decoded:
        detail = self.detail(images)  # stride 8
        stage4 = self.stage4(self.stage3(self.stem(images)))  # stride 16
        semantic = self.context(self.stage5(stage4))  # stride 32
        logits = self.head(self.aggregate(detail, semantic))
        return Decoded(resize_to(logits, images), stage4)


@register_model
def bisenetv2(
    num_classes: int, in_channels: int = 3, aux_head: bool = False, base_width: int = 64
) -> BiSeNetV2:
    """BiSeNetV2: detail + semantic branches with guided aggregation, from scratch."""
    return BiSeNetV2(num_classes, in_channels, aux_head, base_width, head_width=16 * base_width)
