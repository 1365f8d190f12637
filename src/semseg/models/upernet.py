"""UPerNet (Xiao et al., "Unified Perceptual Parsing", 2018), as mmsegmentation pairs it
with ConvNeXt (timm's Swin encoders return NHWC maps for a fixed input size, so they are
not usable here yet): pyramid pooling on the deepest feature, an FPN over the encoder's
stride-4..32 features (lateral 1x1, top-down sums, 3x3 convs), every level upsampled to
stride 4, concatenated, fused by a 3x3 conv and classified.
"""

from __future__ import annotations

import torch
from torch import nn

from semseg.models.base import AuxiliaryHead, Decoded, SegmentationModel, conv_bn_relu, resize_to
from semseg.models.encoders import build_encoder
from semseg.models.pspnet import PyramidPooling
from semseg.models.registry import register_model


class UPerNet(SegmentationModel):
    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        encoder: str,
        pretrained: bool,
        aux_head: bool = False,
        width: int = 512,
    ) -> None:
        super().__init__()
        self.use_encoder(build_encoder(encoder, in_channels, pretrained))
        self.levels = [i for i, r in enumerate(self.encoder.reductions) if r >= 4]
        channels = [self.encoder.out_channels[i] for i in self.levels]
        self.context = PyramidPooling(channels[-1], width)
        self.lateral = nn.ModuleList(conv_bn_relu(c, width, 1) for c in channels[:-1])
        self.smooth = nn.ModuleList(conv_bn_relu(width, width) for _ in channels[:-1])
        self.fuse = conv_bn_relu(len(channels) * width, width)
        self.classifier = nn.Sequential(nn.Dropout2d(0.1), nn.Conv2d(width, num_classes, 1))
        self.aux_head = AuxiliaryHead(channels[-2], num_classes) if aux_head else None

    def forward_padded(self, images: torch.Tensor) -> Decoded:
        encoded = self.encoder(images)
        features = [encoded[i] for i in self.levels]  # strides 4 .. 32
        pyramid = [lateral(f) for lateral, f in zip(self.lateral, features[:-1], strict=True)]
        pyramid.append(self.context(features[-1]))
        for i in range(len(pyramid) - 2, -1, -1):  # top-down: add the coarser level
            pyramid[i] = pyramid[i] + resize_to(pyramid[i + 1], pyramid[i])
        outputs = [smooth(p) for smooth, p in zip(self.smooth, pyramid[:-1], strict=True)]
        outputs.append(pyramid[-1])
        fused = self.fuse(torch.cat([resize_to(o, outputs[0]) for o in outputs], dim=1))
        return Decoded(resize_to(self.classifier(fused), images), features[-2])


@register_model
def upernet(
    num_classes: int,
    in_channels: int = 3,
    encoder: str = "convnext_tiny",
    pretrained: bool = False,
    aux_head: bool = False,
    base_width: int = 512,
) -> UPerNet:
    """UPerNet: pyramid pooling + FPN fusion on a pyramid encoder (ConvNeXt-T; any
    timm/torchvision encoder with stride-4..32 NCHW features)."""
    return UPerNet(num_classes, in_channels, encoder, pretrained, aux_head, base_width)
