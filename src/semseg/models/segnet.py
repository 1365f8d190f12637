"""SegNet (Badrinarayanan, Kendall & Cipolla, 2017).

The encoder is VGG16-BN's 13 convolutions; each 2x2 max-pool remembers where its maxima
were. The decoder mirrors the encoder: MaxUnpool puts values back at those indices
(sparse maps, no learned upsampling), then 3x3 conv + BN + ReLU densify them. With
`pretrained`, the encoder starts from ImageNet VGG16-BN.
"""

from __future__ import annotations

import torch
from torch import nn

from semseg.config import IMAGENET_MEAN, IMAGENET_STD
from semseg.errors import SemsegError
from semseg.models.base import AuxiliaryHead, Decoded, SegmentationModel, conv_bn_relu
from semseg.models.encoders import tv_vgg16_bn_features
from semseg.models.fcn import vgg16_layers
from semseg.models.registry import register_model


class SegNet(SegmentationModel):
    size_divisor = 32
    normalization = (IMAGENET_MEAN, IMAGENET_STD)  # torchvision's VGG weights

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        base_width: int,
        pretrained: bool,
        aux_head: bool = False,
    ) -> None:
        super().__init__()
        if pretrained and base_width != 64:
            raise SemsegError("config key 'model.base_width': pretrained SegNet needs 64")
        if pretrained:
            layers = list(tv_vgg16_bn_features(in_channels, pretrained=True))
        else:
            layers = vgg16_layers(in_channels, base_width, batch_norm=True)
        stages, current = [], []
        for layer in layers:
            if isinstance(layer, nn.MaxPool2d):
                stages.append(nn.Sequential(*current))
                current = []
            else:
                current.append(layer)
        self.encoder_stages = nn.ModuleList(stages)
        self.pool = nn.MaxPool2d(2, 2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2, 2)
        w = [c * base_width // 64 for c in (64, 128, 256, 512)]
        # Decoder stages, deepest first: widths mirror the encoder's.
        plan = [
            [w[3], w[3], w[3]],
            [w[3], w[3], w[2]],
            [w[2], w[2], w[1]],
            [w[1], w[0]],
            [w[0]],
        ]
        inputs = [w[3], w[3], w[2], w[1], w[0]]
        self.decoder_stages = nn.ModuleList(
            nn.Sequential(
                *[conv_bn_relu(a, b) for a, b in zip([first, *widths[:-1]], widths, strict=True)]
            )
            for first, widths in zip(inputs, plan, strict=True)
        )
        self.head = nn.Conv2d(w[0], num_classes, 3, padding=1)
        self.aux_head = (
            AuxiliaryHead(w[3], num_classes) if aux_head else None
        )  # on the encoder output

    def forward_padded(self, images: torch.Tensor) -> Decoded:
        x = images
        pooled = []
        for stage in self.encoder_stages:
            # Sides are multiples of 32, so every pooled map unpools to exactly 2x its size.
            x, indices = self.pool(stage(x))  # N x c x H/2^k x W/2^k, argmax positions
            pooled.append(indices)
        encoded = x
        for stage in self.decoder_stages:
            x = stage(self.unpool(x, pooled.pop()))
        return Decoded(self.head(x), encoded)  # N x C x H x W


@register_model
def segnet(
    num_classes: int,
    in_channels: int = 3,
    base_width: int = 64,
    pretrained: bool = False,
    aux_head: bool = False,
) -> SegNet:
    """SegNet: VGG16-BN encoder, decoder upsampling with the encoder's pooling indices."""
    return SegNet(num_classes, in_channels, base_width, pretrained, aux_head)
