"""FCN-32s / 16s / 8s (Long, Shelhamer & Darrell, 2015) on VGG16.

VGG16's classifier becomes convolutions (fc6: 7x7, fc7: 1x1, both 4096 channels, ReLU
and dropout), a 1x1 scorer gives class scores at stride 32. FCN-16s adds scores from
pool4 (stride 16) after a learned 2x upsampling, FCN-8s also from pool3 (stride 8); the
last upsampling is fixed bilinear. Score layers on skips start at zero and learned
upsamplings at bilinear, as in the paper. With `pretrained`, the ImageNet VGG16 weights
fill the convolutions and fc6/fc7 (reshaped, as the paper converts them).
"""

from __future__ import annotations

import torch
from torch import nn

from semseg.config import IMAGENET_MEAN, IMAGENET_STD
from semseg.models.base import AuxiliaryHead, Decoded, SegmentationModel, resize_to
from semseg.models.pretrained import torchvision_model
from semseg.models.registry import register_model

# VGG16 configuration "D": channels per conv, "M" for 2x2 max-pooling.
_VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def vgg16_layers(in_channels: int, base_width: int, batch_norm: bool) -> list[nn.Module]:
    layers: list[nn.Module] = []
    previous = in_channels
    for item in _VGG16:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
            continue
        width = item * base_width // 64
        layers.append(nn.Conv2d(previous, width, 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(width))
        layers.append(nn.ReLU(inplace=True))
        previous = width
    return layers


def _bilinear_upsampler(channels: int) -> nn.ConvTranspose2d:
    """A 2x transposed convolution initialised to bilinear interpolation (per channel)."""
    up = nn.ConvTranspose2d(channels, channels, kernel_size=4, stride=2, padding=1, bias=False)
    factor = torch.tensor([0.25, 0.75, 0.75, 0.25])
    kernel = torch.outer(factor, factor)
    with torch.no_grad():
        up.weight.zero_()
        for channel in range(channels):
            up.weight[channel, channel] = kernel
    return up


class FCN(SegmentationModel):
    size_divisor = 32
    normalization = (IMAGENET_MEAN, IMAGENET_STD)  # torchvision's VGG weights

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        variant: int,
        base_width: int,
        fc_width: int,
        pretrained: bool,
        aux_head: bool = False,
    ) -> None:
        super().__init__()
        self.variant = variant
        layers = vgg16_layers(in_channels, base_width, batch_norm=False)
        pools = [i for i, layer in enumerate(layers) if isinstance(layer, nn.MaxPool2d)]
        self.to_pool3 = nn.Sequential(*layers[: pools[2] + 1])  # stride 8
        self.to_pool4 = nn.Sequential(*layers[pools[2] + 1 : pools[3] + 1])  # stride 16
        self.to_pool5 = nn.Sequential(*layers[pools[3] + 1 :])  # stride 32
        top = 512 * base_width // 64
        self.fc = nn.Sequential(
            nn.Conv2d(top, fc_width, 7, padding=3),
            nn.ReLU(inplace=True),
            nn.Dropout2d(0.5),
            nn.Conv2d(fc_width, fc_width, 1),
            nn.ReLU(inplace=True),
            nn.Dropout2d(0.5),
        )
        self.score = nn.Conv2d(fc_width, num_classes, 1)
        if variant <= 16:
            self.score_pool4 = self._zero_scorer(top, num_classes)
            self.up_to_16 = _bilinear_upsampler(num_classes)
        if variant == 8:
            self.score_pool3 = self._zero_scorer(256 * base_width // 64, num_classes)
            self.up_to_8 = _bilinear_upsampler(num_classes)
        self.aux_head = AuxiliaryHead(top, num_classes) if aux_head else None  # on pool4
        if pretrained:
            self._load_vgg16(in_channels, base_width, fc_width)

    @staticmethod
    def _zero_scorer(channels: int, num_classes: int) -> nn.Conv2d:
        scorer = nn.Conv2d(channels, num_classes, 1)
        nn.init.zeros_(scorer.weight)
        nn.init.zeros_(scorer.bias)
        return scorer

    def _load_vgg16(self, in_channels: int, base_width: int, fc_width: int) -> None:
        if base_width != 64 or fc_width != 4096 or in_channels != 3:
            raise ValueError("ImageNet VGG16 weights need the paper's widths and RGB input")
        vgg = torchvision_model("vgg16", pretrained=True)
        own = [m for m in self.modules() if isinstance(m, nn.Conv2d)][:13]
        theirs = [m for m in vgg.features if isinstance(m, nn.Conv2d)]
        for mine, source in zip(own, theirs, strict=True):
            mine.load_state_dict(source.state_dict())
        fc6, fc7 = vgg.classifier[0], vgg.classifier[3]
        self.fc[0].weight.data.copy_(fc6.weight.view(4096, 512, 7, 7))
        self.fc[0].bias.data.copy_(fc6.bias)
        self.fc[3].weight.data.copy_(fc7.weight.view(4096, 4096, 1, 1))
        self.fc[3].bias.data.copy_(fc7.bias)

    def forward_padded(self, images: torch.Tensor) -> Decoded:
        pool3 = self.to_pool3(images)  # N x 256 x H/8 x W/8
        pool4 = self.to_pool4(pool3)  # N x 512 x H/16 x W/16
        scores = self.score(self.fc(self.to_pool5(pool4)))  # N x C x H/32 x W/32
        if self.variant <= 16:
            scores = resize_to(self.up_to_16(scores), pool4) + self.score_pool4(pool4)
        if self.variant == 8:
            scores = resize_to(self.up_to_8(scores), pool3) + self.score_pool3(pool3)
        # Fixed bilinear upsampling to the input.
        return Decoded(resize_to(scores, images), pool4)


def _fcn(
    *,
    variant: int,
    num_classes: int,
    in_channels: int,
    base_width: int,
    pretrained: bool,
    aux_head: bool,
) -> FCN:
    fc_width = 4096 * base_width // 64
    return FCN(num_classes, in_channels, variant, base_width, fc_width, pretrained, aux_head)


@register_model
def fcn32s(
    num_classes: int,
    in_channels: int = 3,
    base_width: int = 64,
    pretrained: bool = False,
    aux_head: bool = False,
) -> FCN:
    """FCN-32s on VGG16: one 32x upsampling of the stride-32 scores."""
    return _fcn(
        variant=32,
        num_classes=num_classes,
        in_channels=in_channels,
        base_width=base_width,
        pretrained=pretrained,
        aux_head=aux_head,
    )


@register_model
def fcn16s(
    num_classes: int,
    in_channels: int = 3,
    base_width: int = 64,
    pretrained: bool = False,
    aux_head: bool = False,
) -> FCN:
    """FCN-16s on VGG16: stride-32 scores fused with pool4 scores."""
    return _fcn(
        variant=16,
        num_classes=num_classes,
        in_channels=in_channels,
        base_width=base_width,
        pretrained=pretrained,
        aux_head=aux_head,
    )


@register_model
def fcn8s(
    num_classes: int,
    in_channels: int = 3,
    base_width: int = 64,
    pretrained: bool = False,
    aux_head: bool = False,
) -> FCN:
    """FCN-8s on VGG16: fused with pool4 and pool3 scores (the paper's best)."""
    return _fcn(
        variant=8,
        num_classes=num_classes,
        in_channels=in_channels,
        base_width=base_width,
        pretrained=pretrained,
        aux_head=aux_head,
    )
