"""U-Net (Ronneberger et al., 2015), classic and on any encoder.

Classic: four 2x2 max-pool downsamplings, two 3x3 conv + BatchNorm + ReLU per level,
channels doubling from `base_width`, 2x2 transposed-conv upsampling and skip
concatenation. Padded 3x3 convolutions keep sizes aligned, so skips need no cropping.
On an encoder (`model.encoder=...`): the encoder's feature pyramid gives the skips, and a
decoder of upsample + concatenate + two 3x3 convs per level returns to full resolution.
Fewer `decoder_widths` than levels stop the decoder early (e.g. 4 widths end at stride 2)
and the logits are upsampled bilinearly: on a CPU the full-resolution levels cost most of
the time for little accuracy.
"""

from __future__ import annotations

import torch
from torch import nn

from semseg.errors import SemsegError
from semseg.models.base import AuxiliaryHead, Decoded, SegmentationModel, conv_bn_relu, resize_to
from semseg.models.encoders import build_encoder
from semseg.models.registry import register_model


def _double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        conv_bn_relu(in_channels, out_channels), conv_bn_relu(out_channels, out_channels)
    )


class _UpBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
        self.conv = _double_conv(2 * out_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([self.up(x), skip], dim=1))


class UNet(SegmentationModel):
    def __init__(
        self, num_classes: int, in_channels: int, base_width: int, depth: int, aux_head: bool
    ) -> None:
        super().__init__()
        self.size_divisor = 2**depth
        widths = [base_width * 2**level for level in range(depth + 1)]
        self.down = nn.ModuleList([_double_conv(in_channels, widths[0])])
        self.down.extend(_double_conv(widths[i], widths[i + 1]) for i in range(depth))
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList(_UpBlock(widths[i + 1], widths[i]) for i in reversed(range(depth)))
        self.head = nn.Conv2d(widths[0], num_classes, kernel_size=1)
        self.aux_head = (
            AuxiliaryHead(widths[-1], num_classes) if aux_head else None
        )  # on the bottleneck

    def forward_padded(self, images: torch.Tensor) -> Decoded:
        x = self.down[0](images)  # N x w x H x W
        skips = []
        for block in self.down[1:]:
            skips.append(x)
            x = block(self.pool(x))  # N x 2w x H/2 x W/2 ...
        bottleneck = x
        for block in self.up:
            x = block(x, skips.pop())
        return Decoded(self.head(x), bottleneck)  # N x C x H x W


class EncoderUNet(SegmentationModel):
    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        encoder: str,
        pretrained: bool,
        aux_head: bool,
        decoder_widths: tuple[int, ...] = (256, 128, 64, 32, 16),
    ) -> None:
        super().__init__()
        if not decoder_widths:
            raise SemsegError("config key 'model.decoder_widths': give at least one width")
        self.use_encoder(build_encoder(encoder, in_channels, pretrained))
        channels = self.encoder.out_channels  # shallow .. deep
        skips = list(reversed(channels[:-1])) + [0] * (len(decoder_widths) - len(channels) + 1)
        skips = skips[: len(decoder_widths)]  # a short decoder stops above the shallow skips
        blocks, previous = [], channels[-1]
        for width, skip in zip(decoder_widths, skips, strict=True):
            blocks.append(_double_conv(previous + skip, width))
            previous = width
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Conv2d(previous, num_classes, kernel_size=1)
        self.aux_head = AuxiliaryHead(channels[-2], num_classes) if aux_head else None

    def forward_padded(self, images: torch.Tensor) -> Decoded:
        features = self.encoder(images)
        x = features[-1]
        skips = list(reversed(features[:-1]))
        for index, block in enumerate(self.blocks):
            if index < len(skips):
                skip = skips[index]
                x = torch.cat([resize_to(x, skip), skip], dim=1)
            else:  # the levels above the shallowest feature, up to full resolution
                x = nn.functional.interpolate(x, scale_factor=2.0, mode="bilinear")
            x = block(x)
        return Decoded(resize_to(self.head(x), images), features[-2])


def _unet(
    *,
    num_classes: int,
    in_channels: int,
    base_width: int,
    encoder: str | None,
    pretrained: bool,
    aux_head: bool,
    decoder_widths: tuple[int, ...] | None = None,
    depth: int = 4,
) -> SegmentationModel:
    if encoder is not None:
        widths = {} if decoder_widths is None else {"decoder_widths": tuple(decoder_widths)}
        return EncoderUNet(num_classes, in_channels, encoder, pretrained, aux_head, **widths)
    if decoder_widths is not None:
        raise SemsegError(
            "config key 'model.decoder_widths': only the U-Net on an encoder has them; "
            "set model.encoder or use model.base_width for the classic U-Net"
        )
    if pretrained:
        raise SemsegError(
            "config key 'model.pretrained': the classic U-Net has no pretrained "
            "weights; set model.encoder (e.g. efficientnet_lite0) to use them"
        )
    return UNet(num_classes, in_channels, base_width=base_width, depth=depth, aux_head=aux_head)


@register_model
def unet(
    num_classes: int,
    in_channels: int = 3,
    base_width: int = 64,
    encoder: str | None = None,
    pretrained: bool = False,
    aux_head: bool = False,
    decoder_widths: tuple[int, ...] | None = None,
) -> SegmentationModel:
    """U-Net at the paper's widths (64 to 1024 channels), or a U-Net decoder on an encoder.

    With `encoder` (e.g. efficientnet_lite0, tv_resnet34) the encoder's pyramid gives the
    skip connections; `decoder_widths` (deep to shallow, default 256..16 down to full
    resolution) sets the decoder, and fewer widths end it at a coarser stride."""
    return _unet(
        num_classes=num_classes,
        in_channels=in_channels,
        base_width=base_width,
        encoder=encoder,
        pretrained=pretrained,
        aux_head=aux_head,
        decoder_widths=decoder_widths,
    )


@register_model
def unet_small(
    num_classes: int, in_channels: int = 3, base_width: int = 16, aux_head: bool = False
) -> SegmentationModel:
    """Classic U-Net at a quarter of the paper's width: the quick-start model.

    16 to 256 channels, 1.9 M parameters; trains in minutes on a laptop CPU."""
    return _unet(
        num_classes=num_classes,
        in_channels=in_channels,
        base_width=base_width,
        encoder=None,
        pretrained=False,
        aux_head=aux_head,
    )
