"""TransUNet (Chen et al., 2021): a hybrid CNN + transformer encoder and a cascaded
upsampler with skips, as in the paper's R50-ViT-B/16.

The CNN (ResNet-50 by default, any encoder) runs to stride 16; its last map, projected to
the transformer width (1x1 patches), gets learned position embeddings (resampled to the
grid of any input) and 12 transformer blocks (timm's). The tokens, back as a map, pass a
3x3 conv and four decoder blocks (2x upsampling, the encoder's stride-8/4/2 features
concatenated when present, two 3x3 convs) to full resolution, then a 3x3 classifier.
"""

from __future__ import annotations

import math

import torch
from timm.models.vision_transformer import Block
from torch import nn

from semseg.models.base import AuxiliaryHead, Decoded, SegmentationModel, conv_bn_relu, resize_to
from semseg.models.encoders import build_encoder
from semseg.models.registry import register_model

DECODER_WIDTHS = (256, 128, 64, 16)


class _DecoderBlock(nn.Module):
    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            conv_bn_relu(in_channels + skip_channels, out_channels),
            conv_bn_relu(out_channels, out_channels),
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None, size) -> torch.Tensor:
        x = resize_to(x, size)
        return self.convs(x if skip is None else torch.cat([x, skip], dim=1))


class TransUNet(SegmentationModel):
    size_divisor = 16

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        encoder: str,
        pretrained: bool,
        aux_head: bool,
        hidden: int = 768,
        depth: int = 12,
        grid: int = 14,
    ) -> None:
        super().__init__()
        encoder_net = build_encoder(encoder, in_channels, pretrained, max_reduction=16)
        self.use_encoder(encoder_net, size_divisor=self.size_divisor)
        channels, reductions = self.encoder.out_channels, self.encoder.reductions
        self.embed = nn.Conv2d(channels[-1], hidden, 1)
        self.position = nn.Parameter(torch.randn(1, hidden, grid, grid) * 0.02)
        heads = math.gcd(12, hidden)
        self.blocks = nn.Sequential(*(Block(hidden, heads) for _ in range(depth)))
        self.norm = nn.LayerNorm(hidden)
        self.bridge = conv_bn_relu(hidden, 512)
        # Skips at strides 8, 4, 2 (the encoder's features there, deepest first).
        self.skip_index = {r: i for i, r in enumerate(reductions) if r in (2, 4, 8)}
        skip_channels = [
            channels[self.skip_index[r]] if r in self.skip_index else 0 for r in (8, 4, 2, 1)
        ]
        widths = (512, *DECODER_WIDTHS)
        self.decoder = nn.ModuleList(
            _DecoderBlock(widths[i], skip_channels[i], widths[i + 1]) for i in range(4)
        )
        self.classifier = nn.Conv2d(DECODER_WIDTHS[-1], num_classes, 3, padding=1)
        self.aux_head = AuxiliaryHead(channels[-1], num_classes) if aux_head else None

    def forward_padded(self, images: torch.Tensor) -> Decoded:
        features = self.encoder(images)
        cnn = features[-1]  # stride 16
        x = self.embed(cnn)
        x = x + resize_to(self.position, x)
        n, dim, height, width = x.shape
        tokens = self.norm(self.blocks(x.flatten(2).transpose(1, 2)))
        x = self.bridge(tokens.transpose(1, 2).reshape(n, dim, height, width))
        for stride, block in zip((8, 4, 2, 1), self.decoder, strict=True):
            size = (images.shape[-2] // stride, images.shape[-1] // stride)
            skip = features[self.skip_index[stride]] if stride in self.skip_index else None
            x = block(x, skip, size)
        return Decoded(self.classifier(x), cnn)


@register_model
def transunet(
    num_classes: int,
    in_channels: int = 3,
    encoder: str = "tv_resnet50",
    pretrained: bool = False,
    aux_head: bool = False,
    base_width: int = 768,
) -> TransUNet:
    """TransUNet: ResNet-50 to stride 16, 12 ViT-B blocks, cascaded upsampler with skips."""
    return TransUNet(num_classes, in_channels, encoder, pretrained, aux_head, hidden=base_width)
