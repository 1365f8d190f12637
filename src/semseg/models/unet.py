"""U-Net (Ronneberger et al., 2015) as the classic tutorials build it.

Four 2x2 max-pool downsamplings, two 3x3 conv + BatchNorm + ReLU per level, channels
doubling from `base_width`, 2x2 transposed-conv upsampling and skip concatenation. Padded
3x3 convolutions keep sizes aligned, so no cropping of skips is needed.
"""

from __future__ import annotations

import torch
from torch import nn

from semseg.models.base import SegmentationModel
from semseg.models.registry import register_model


def _double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class _UpBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
        self.conv = _double_conv(2 * out_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([self.up(x), skip], dim=1))


class UNet(SegmentationModel):
    def __init__(self, num_classes: int, in_channels: int, base_width: int, depth: int) -> None:
        super().__init__()
        self.size_divisor = 2**depth
        widths = [base_width * 2**level for level in range(depth + 1)]
        self.down = nn.ModuleList([_double_conv(in_channels, widths[0])])
        self.down.extend(_double_conv(widths[i], widths[i + 1]) for i in range(depth))
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList(_UpBlock(widths[i + 1], widths[i]) for i in reversed(range(depth)))
        self.head = nn.Conv2d(widths[0], num_classes, kernel_size=1)

    def forward_padded(self, images: torch.Tensor) -> torch.Tensor:
        x = self.down[0](images)  # N x w x H x W
        skips = []
        for block in self.down[1:]:
            skips.append(x)
            x = block(self.pool(x))  # N x 2w x H/2 x W/2 ...
        for block in self.up:
            x = block(x, skips.pop())
        return self.head(x)  # N x C x H x W


def _unet(*, num_classes: int, in_channels: int, base_width: int, depth: int = 4) -> UNet:
    return UNet(num_classes, in_channels, base_width=base_width, depth=depth)


@register_model
def unet(num_classes: int, in_channels: int = 3, base_width: int = 64) -> UNet:
    """The paper's widths (64 .. 1024 channels), about 31 M parameters."""
    return _unet(num_classes=num_classes, in_channels=in_channels, base_width=base_width)


@register_model
def unet_small(num_classes: int, in_channels: int = 3, base_width: int = 16) -> UNet:
    """A quarter of the paper's width (16 .. 256 channels), about 1.9 M parameters: the
    quick-start model, trains in minutes on a laptop CPU."""
    return _unet(num_classes=num_classes, in_channels=in_channels, base_width=base_width)
