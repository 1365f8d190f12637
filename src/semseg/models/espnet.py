"""ESPNet (Mehta et al., 2018), the full network with its light decoder, from scratch.

The ESP module reduces its input with a 1x1 conv (a strided 3x3 conv when it
downsamples), runs K = 5 parallel 3x3 convs dilated 1, 2, 4, 8, 16 on the reduced map,
adds them hierarchically (each branch plus all smaller rates: no gridding artefacts)
and concatenates; a residual connection when the shape allows. Encoder: a strided 3x3
conv, ESP stages at strides 4 and 8 (alpha = 2 and 8 modules, as the paper's ESPNet),
with the input image (average-pooled) concatenated at each level. Decoder: the paper's:
1x1 projections of each level to the classes, an ESP module and transposed convs back
to full resolution.
"""

from __future__ import annotations

import torch
from torch import nn

from semseg.models.base import AuxiliaryHead, Decoded, SegmentationModel, resize_to
from semseg.models.registry import register_model


def bn_prelu(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm2d(channels), nn.PReLU(channels))


class ESP(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, k: int = 5):
        super().__init__()
        k = min(k, out_channels)  # the decoder's module has as many channels as classes
        reduced = out_channels // k
        first = out_channels - (k - 1) * reduced  # the rate-1 branch takes the rest
        kernel = 3 if stride == 2 else 1
        self.reduce = nn.Conv2d(in_channels, reduced, kernel, stride, kernel // 2, bias=False)
        self.branches = nn.ModuleList(
            nn.Conv2d(reduced, first if i == 0 else reduced, 3, 1, 2**i, 2**i, bias=False)
            for i in range(k)
        )
        self.residual = stride == 1 and in_channels == out_channels
        self.out = bn_prelu(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        reduced = self.reduce(x)
        outputs = [branch(reduced) for branch in self.branches]
        # Hierarchical feature fusion: each dilated map plus the sum of those with smaller
        # rates (the rate-1 map, of other width, stays as it is).
        for i in range(2, len(outputs)):
            outputs[i] = outputs[i] + outputs[i - 1]
        merged = torch.cat(outputs, dim=1)
        return self.out(x + merged if self.residual else merged)


class ESPNet(SegmentationModel):
    size_divisor = 8

    def __init__(self, num_classes: int, in_channels: int, aux_head: bool, width: int = 16) -> None:
        super().__init__()
        c = num_classes
        w1, w2, w3 = width, 4 * width, 8 * width  # 16, 64, 128 in the paper
        self.level1 = nn.Sequential(nn.Conv2d(in_channels, w1, 3, 2, 1, bias=False), bn_prelu(w1))
        self.level1_out = bn_prelu(w1 + in_channels)
        self.down2 = ESP(w1 + in_channels, w2, stride=2)
        self.level2 = nn.Sequential(ESP(w2, w2), ESP(w2, w2))
        self.level2_out = bn_prelu(2 * w2 + in_channels)
        self.down3 = ESP(2 * w2 + in_channels, w3, stride=2)
        self.level3 = nn.Sequential(*(ESP(w3, w3) for _ in range(8)))
        self.level3_out = bn_prelu(2 * w3)
        self.classify3 = nn.Conv2d(2 * w3, c, 1, bias=False)
        self.up3 = nn.Sequential(nn.ConvTranspose2d(c, c, 2, 2, bias=False), bn_prelu(c))
        self.classify2 = nn.Sequential(
            nn.Conv2d(2 * w2 + in_channels, c, 1, bias=False), bn_prelu(c)
        )
        self.merge2 = ESP(2 * c, c)
        self.up2 = nn.Sequential(nn.ConvTranspose2d(c, c, 2, 2, bias=False), bn_prelu(c))
        self.classify1 = nn.Sequential(nn.Conv2d(w1 + in_channels, c, 1, bias=False), bn_prelu(c))
        self.merge1 = nn.Conv2d(2 * c, c, 1, bias=False)
        self.up1 = nn.ConvTranspose2d(c, c, 2, 2)
        self.aux_head = AuxiliaryHead(2 * w3, num_classes) if aux_head else None

    def forward_padded(self, images: torch.Tensor) -> Decoded:
        half = nn.functional.avg_pool2d(images, 2)
        quarter = nn.functional.avg_pool2d(half, 2)
        level1 = self.level1_out(torch.cat([self.level1(images), half], 1))  # stride 2
        down2 = self.down2(level1)
        level2 = self.level2_out(torch.cat([self.level2(down2), down2, quarter], 1))  # 4
        down3 = self.down3(level2)
        level3 = self.level3_out(torch.cat([self.level3(down3), down3], 1))  # stride 8
        x = self.up3(self.classify3(level3))  # stride 4
        x = self.up2(self.merge2(torch.cat([x, self.classify2(level2)], 1)))  # stride 2
        x = self.up1(self.merge1(torch.cat([x, self.classify1(level1)], 1)))  # stride 1
        return Decoded(resize_to(x, images), level3)


@register_model
def espnet(
    num_classes: int, in_channels: int = 3, aux_head: bool = False, base_width: int = 16
) -> ESPNet:
    """ESPNet: efficient spatial pyramid (dilated, hierarchically fused) modules, from
    scratch (the original ESPNet, not ESPNetv2)."""
    return ESPNet(num_classes, in_channels, aux_head, base_width)
