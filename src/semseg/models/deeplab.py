"""DeepLabV3 (Chen et al., 2017) and DeepLabV3+ (Chen et al., 2018).

ASPP: a 1x1 branch, three 3x3 atrous branches and an image-pooling branch, concatenated
and projected to 256 channels. The atrous rates follow the output stride (6/12/18 at 16,
12/24/36 at 8). V3 classifies the ASPP output and upsamples; V3+ fuses it with 48
channels of stride-4 features and refines with two 3x3 convs. `aux_head` adds an FCN head
on the second-deepest feature for deep supervision during training (as torchvision).
"""

from __future__ import annotations

import torch
from torch import nn

from semseg.models.base import AuxiliaryHead, Decoded, SegmentationModel, conv_bn_relu, resize_to
from semseg.models.encoders import apply_multi_grid, build_encoder
from semseg.models.registry import register_model


class ASPP(nn.Module):
    def __init__(self, in_channels: int, rates: tuple[int, int, int], out_channels: int = 256):
        super().__init__()
        self.branches = nn.ModuleList([conv_bn_relu(in_channels, out_channels, 1)])
        self.branches.extend(conv_bn_relu(in_channels, out_channels, 3, rate) for rate in rates)
        self.image_pool = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )
        self.project = nn.Sequential(
            conv_bn_relu(5 * out_channels, out_channels, 1), nn.Dropout(0.1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.image_pool(x).expand(-1, -1, *x.shape[-2:])  # N x 256 x h x w
        return self.project(torch.cat([branch(x) for branch in self.branches] + [pooled], 1))


class DeepLab(SegmentationModel):
    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        encoder: str,
        output_stride: int,
        plus: bool,
        pretrained: bool,
        aux_head: bool,
        multi_grid: list[int] | None = None,
    ) -> None:
        super().__init__()
        self.use_encoder(build_encoder(encoder, in_channels, pretrained, output_stride), 32)
        if multi_grid:
            apply_multi_grid(self.encoder, multi_grid)
        self.plus = plus
        rates = (12, 24, 36) if output_stride == 8 else (6, 12, 18)
        channels = self.encoder.out_channels
        self.aspp = ASPP(channels[-1], rates)
        if plus:
            self.low_level_index = self.encoder.reductions.index(4)
            self.reduce_low = conv_bn_relu(channels[self.low_level_index], 48, 1)
            self.refine = nn.Sequential(conv_bn_relu(256 + 48, 256), conv_bn_relu(256, 256))
        else:
            self.refine = conv_bn_relu(256, 256)
        self.classifier = nn.Conv2d(256, num_classes, 1)
        self.aux_head = AuxiliaryHead(channels[-2], num_classes) if aux_head else None

    def forward_padded(self, images: torch.Tensor) -> Decoded:
        features = self.encoder(images)
        x = self.aspp(features[-1])  # N x 256 x H/os x W/os
        if self.plus:
            low = self.reduce_low(features[self.low_level_index])  # N x 48 x H/4 x W/4
            x = torch.cat([resize_to(x, low), low], dim=1)
        logits = resize_to(self.classifier(self.refine(x)), images)
        return Decoded(logits, features[-2])


@register_model
def deeplabv3(
    num_classes: int,
    in_channels: int = 3,
    encoder: str = "tv_resnet50",
    output_stride: int = 8,
    pretrained: bool = False,
    aux_head: bool = False,
    multi_grid: list[int] | None = None,
) -> DeepLab:
    """DeepLabV3: ASPP with image pooling on a dilated ResNet-50 (output stride 8);
    `multi_grid` (e.g. [1, 2, 4]) sets the last stage's block rates."""
    return DeepLab(
        num_classes,
        in_channels,
        encoder,
        output_stride,
        plus=False,
        pretrained=pretrained,
        aux_head=aux_head,
        multi_grid=multi_grid,
    )


@register_model
def deeplabv3plus(
    num_classes: int,
    in_channels: int = 3,
    encoder: str = "tv_resnet50",
    output_stride: int = 16,
    pretrained: bool = False,
    aux_head: bool = False,
    multi_grid: list[int] | None = None,
) -> DeepLab:
    """DeepLabV3+: ASPP at output stride 16 plus a decoder fusing stride-4 features;
    `multi_grid` as for deeplabv3."""
    return DeepLab(
        num_classes,
        in_channels,
        encoder,
        output_stride,
        plus=True,
        pretrained=pretrained,
        aux_head=aux_head,
        multi_grid=multi_grid,
    )
