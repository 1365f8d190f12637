"""LiteSeg (Emara et al., 2019): a light DeepLabV3+-style network.

Dense ASPP on the encoder's deepest feature (a 1x1 conv, 3x3 convs at rates 3, 6, 9 and
image pooling, concatenated with the feature itself and reduced by a 1x1 conv), upsampled
to stride 4 and joined with the stride-4 feature; two 3x3 convs and a 1x1 classifier.
The paper's encoders were MobileNetV2, ShuffleNet and DarkNet19; any timm or
torchvision encoder works here.
"""

from __future__ import annotations

import torch
from torch import nn

from semseg.models.base import AuxiliaryHead, Decoded, SegmentationModel, conv_bn_relu, resize_to
from semseg.models.encoders import build_encoder
from semseg.models.registry import register_model


class DenseASPP(nn.Module):
    def __init__(self, in_channels: int, width: int, rates: tuple[int, ...] = (3, 6, 9)):
        super().__init__()
        self.branches = nn.ModuleList(
            [conv_bn_relu(in_channels, width, 1)]
            + [conv_bn_relu(in_channels, width, 3, dilation=rate) for rate in rates]
        )
        self.pooled = conv_bn_relu(in_channels, width, 1)
        self.reduce = conv_bn_relu(in_channels + (len(rates) + 2) * width, width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.pooled(x.mean((2, 3), keepdim=True)).expand(-1, -1, *x.shape[-2:])
        return self.reduce(torch.cat([x, *(branch(x) for branch in self.branches), pooled], 1))


class LiteSeg(SegmentationModel):
    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        encoder: str,
        pretrained: bool,
        output_stride: int,
        aux_head: bool = False,
        width: int = 96,
    ) -> None:
        super().__init__()
        self.use_encoder(build_encoder(encoder, in_channels, pretrained, output_stride))
        channels, reductions = self.encoder.out_channels, self.encoder.reductions
        self.low_index = reductions.index(4)
        self.context = DenseASPP(channels[-1], width)
        self.decoder = nn.Sequential(
            conv_bn_relu(width + channels[self.low_index], width),
            conv_bn_relu(width, width),
            nn.Conv2d(width, num_classes, 1),
        )
        self.aux_head = AuxiliaryHead(channels[-2], num_classes) if aux_head else None

    def forward_padded(self, images: torch.Tensor) -> Decoded:
        features = self.encoder(images)
        low = features[self.low_index]
        context = resize_to(self.context(features[-1]), low)
        logits = self.decoder(torch.cat([context, low], dim=1))
        return Decoded(resize_to(logits, images), features[-2])


@register_model
def liteseg(
    num_classes: int,
    in_channels: int = 3,
    encoder: str = "mobilenetv2_100",
    output_stride: int = 16,
    pretrained: bool = False,
    aux_head: bool = False,
    base_width: int = 96,
) -> LiteSeg:
    """LiteSeg: dense ASPP and a stride-4 decoder on MobileNetV2 (any encoder)."""
    return LiteSeg(
        num_classes, in_channels, encoder, pretrained, output_stride, aux_head, base_width
    )
