"""Swin-Unet (Cao et al., 2021): a U-shaped network of Swin Transformer blocks in both the
encoder and the decoder.

Encoder: 4x4 patch embedding (C = 96), then four stages of two Swin blocks (window
attention with relative position bias, every second block on windows shifted by half a
window) joined by patch merging (2x2 neighbours concatenated, linearly reduced: half the
resolution, twice the width); the last stage is the bottleneck. Decoder: patch
expanding (a linear layer doubling the width, rearranged into twice the resolution), the
encoder's skip concatenated and linearly fused, two Swin blocks, three times; a final 4x
patch expanding and a linear classifier. Maps whose sides are not multiples of the
window (7) are padded inside each block and cropped back, so any input size works.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from timm.layers import DropPath, Mlp
from torch import nn

from semseg.models.base import AuxiliaryHead, Decoded, SegmentationModel, crop
from semseg.models.registry import register_model

WINDOW = 7


def _windows(x: torch.Tensor, size: int) -> torch.Tensor:
    """N x H x W x C (sides multiples of `size`) -> N*windows x size*size x C."""
    n, height, width, channels = x.shape
    x = x.reshape(n, height // size, size, width // size, size, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, size * size, channels)


def _merge_windows(windows: torch.Tensor, size: int, n: int, height: int, width: int):
    """The inverse of `_windows`."""
    channels = windows.shape[-1]
    x = windows.reshape(n, height // size, width // size, size, size, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(n, height, width, channels)


def _shift_mask(height: int, width: int, size: int, shift: int, like: torch.Tensor):
    """windows x L x L additive mask: -100 between pixels that the cyclic shift brought
    together from different regions of the map."""
    rows = torch.arange(height, device=like.device)
    columns = torch.arange(width, device=like.device)
    row_region = (rows >= height - size).long() + (rows >= height - shift).long()
    column_region = (columns >= width - size).long() + (columns >= width - shift).long()
    region = (row_region[:, None] * 3 + column_region[None, :])[None, :, :, None]
    ids = _windows(region.to(like.dtype), size)[..., 0]  # windows x L
    different = ids[:, :, None] != ids[:, None, :]
    return different.to(like.dtype) * -100.0


class WindowAttention(nn.Module):
    def __init__(self, dim: int, heads: int, size: int = WINDOW) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.bias_table = nn.Parameter(torch.zeros((2 * size - 1) ** 2, heads))
        nn.init.trunc_normal_(self.bias_table, std=0.02)
        coords = torch.stack(torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij"))
        relative = (coords.flatten(1)[:, :, None] - coords.flatten(1)[:, None, :]) + size - 1
        self.register_buffer("bias_index", relative[0] * (2 * size - 1) + relative[1], False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, n: int) -> torch.Tensor:
        windows, length, dim = x.shape
        qkv = self.qkv(x).reshape(windows, length, 3, self.heads, dim // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each windows x heads x L x d
        bias = self.bias_table[self.bias_index].permute(2, 0, 1)[None]  # 1 x heads x L x L
        if mask is not None:  # the same mask for each image's windows
            bias = (bias + mask[:, None]).repeat(n, 1, 1, 1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
        return self.proj(out.transpose(1, 2).reshape(windows, length, dim))


class SwinBlock(nn.Module):
    def __init__(self, dim: int, heads: int, shift: bool, drop_path: float = 0.0) -> None:
        super().__init__()
        self.shift = WINDOW // 2 if shift else 0
        self.norm1 = nn.LayerNorm(dim)
        self.attention = WindowAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, 4 * dim)
        self.drop_path = DropPath(drop_path) if drop_path else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """N x H x W x C in and out."""
        n, height, width, channels = x.shape
        y = self.norm1(x).permute(0, 3, 1, 2)  # padding and cropping work on N x C x H x W
        pad_h, pad_w = (WINDOW - height % WINDOW) % WINDOW, (WINDOW - width % WINDOW) % WINDOW
        y = F.pad(y, (0, pad_w, 0, pad_h)).permute(0, 2, 3, 1)
        padded_h, padded_w = height + pad_h, width + pad_w
        mask = None
        if self.shift:
            y = torch.roll(y, (-self.shift, -self.shift), (1, 2))
            mask = _shift_mask(padded_h, padded_w, WINDOW, self.shift, y)
        y = self.attention(_windows(y, WINDOW), mask, n)
        y = _merge_windows(y, WINDOW, n, padded_h, padded_w)
        if self.shift:
            y = torch.roll(y, (self.shift, self.shift), (1, 2))
        y = crop(y.permute(0, 3, 1, 2), height, width).permute(0, 2, 3, 1)
        x = x + self.drop_path(y)
        return x + self.drop_path(self.mlp(self.norm2(x)))


def _stage(dim: int, heads: int, depth: int, drop_path: float) -> nn.Sequential:
    return nn.Sequential(*(SwinBlock(dim, heads, i % 2 == 1, drop_path) for i in range(depth)))


class PatchMerging(nn.Module):
    """N x H x W x C -> N x H/2 x W/2 x 2C (H, W even)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduce = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = [x[:, i::2, j::2] for j in (0, 1) for i in (0, 1)]
        return self.reduce(self.norm(torch.cat(parts, dim=-1)))


class PatchExpanding(nn.Module):
    """N x H x W x C -> N x fH x fW x C*2/f (f = 2), or x C for the final f = 4."""

    def __init__(self, dim: int, factor: int = 2) -> None:
        super().__init__()
        self.factor = factor
        out = dim // 2 if factor == 2 else dim
        self.expand = nn.Linear(dim, out * factor * factor, bias=False)
        self.norm = nn.LayerNorm(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, height, width, _ = x.shape
        f = self.factor
        x = self.expand(x)
        channels = x.shape[-1] // (f * f)
        x = x.reshape(n, height, width, f, f, channels).permute(0, 1, 3, 2, 4, 5)
        return self.norm(x.reshape(n, height * f, width * f, channels))


class SwinUnet(SegmentationModel):
    size_divisor = 32

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        aux_head: bool,
        width: int = 96,
        depths: tuple[int, ...] = (2, 2, 2, 2),
        drop_path: float = 0.1,
    ) -> None:
        super().__init__()
        dims = [width * 2**i for i in range(4)]
        heads = [math.gcd(3 * 2**i, d) for i, d in enumerate(dims)]
        self.embed = nn.Conv2d(in_channels, width, 4, 4)
        self.embed_norm = nn.LayerNorm(width)
        self.encoder = nn.ModuleList(
            _stage(d, h, depth, drop_path) for d, h, depth in zip(dims, heads, depths, strict=True)
        )
        self.merge = nn.ModuleList(PatchMerging(d) for d in dims[:-1])
        self.expand = nn.ModuleList(PatchExpanding(d) for d in dims[:0:-1])  # 8C, 4C, 2C
        self.fuse = nn.ModuleList(nn.Linear(2 * d, d) for d in dims[-2::-1])  # 4C, 2C, C
        self.decoder = nn.ModuleList(
            _stage(d, h, 2, drop_path) for d, h in zip(dims[-2::-1], heads[-2::-1], strict=True)
        )
        self.norm = nn.LayerNorm(width)
        self.final_expand = PatchExpanding(width, factor=4)
        self.classifier = nn.Conv2d(width, num_classes, 1)
        self.aux_head = AuxiliaryHead(dims[-1], num_classes) if aux_head else None

    def forward_padded(self, images: torch.Tensor) -> Decoded:
        x = self.embed_norm(self.embed(images).permute(0, 2, 3, 1))  # N x H/4 x W/4 x C
        skips = []
        for index, stage in enumerate(self.encoder):
            x = stage(x)
            if index < len(self.merge):
                skips.append(x)
                x = self.merge[index](x)
        bottleneck = x
        for expand, fuse, stage, skip in zip(
            self.expand, self.fuse, self.decoder, skips[::-1], strict=True
        ):
            x = stage(fuse(torch.cat([expand(x), skip], dim=-1)))
        x = self.final_expand(self.norm(x)).permute(0, 3, 1, 2)  # N x C x H x W
        return Decoded(self.classifier(x), bottleneck.permute(0, 3, 1, 2))


@register_model
def swin_unet(
    num_classes: int, in_channels: int = 3, aux_head: bool = False, base_width: int = 96
) -> SwinUnet:
    """Swin-Unet: Swin Transformer blocks in a U-shaped encoder-decoder (Swin-T widths)."""
    return SwinUnet(num_classes, in_channels, aux_head, base_width)
