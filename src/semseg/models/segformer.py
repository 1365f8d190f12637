"""SegFormer (Xie et al., 2021) with the MiT-B0..B5 encoders.

Mix Transformer: four stages of overlapping patch embeddings (7x7 stride 4, then 3x3
stride 2) and transformer blocks whose attention reads keys and values from a
spatially reduced sequence (reduction ratios 8, 4, 2, 1), with Mix-FFN (a 3x3 depthwise
conv between the two linear layers) instead of position encodings. The all-MLP decoder
projects each stage to 256 channels, upsamples them to stride 4, fuses, and classifies.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from semseg.errors import SemsegError
from semseg.models.base import AuxiliaryHead, Decoded, SegmentationModel, conv_bn_relu, resize_to
from semseg.models.registry import register_model


class _PatchEmbed(nn.Module):
    def __init__(self, in_channels: int, dim: int, patch: int, stride: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, patch, stride, padding=patch // 2)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        x = self.proj(x)  # N x D x h x w
        height, width = x.shape[-2:]
        return self.norm(x.flatten(2).transpose(1, 2)), height, width  # N x hw x D


class _EfficientAttention(nn.Module):
    def __init__(self, dim: int, heads: int, reduction: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.reduce = nn.Conv2d(dim, dim, reduction, reduction) if reduction > 1 else None
        self.norm = nn.LayerNorm(dim) if reduction > 1 else None

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        n, length, dim = x.shape
        head_dim = dim // self.heads
        q = self.q(x).reshape(n, length, self.heads, head_dim).transpose(1, 2)  # N x h x L x d
        context = x
        if self.reduce is not None:
            grid = x.transpose(1, 2).reshape(n, dim, height, width)
            context = self.norm(self.reduce(grid).flatten(2).transpose(1, 2))  # N x L/r² x D
        # Explicit sizes, not -1: a tracer with symbolic sizes cannot infer them.
        kv = self.kv(context).reshape(n, context.shape[1], 2, self.heads, head_dim)
        kv = kv.permute(2, 0, 3, 1, 4)  # 2 x N x h x L' x d
        attended = F.scaled_dot_product_attention(q, kv[0], kv[1])  # N x h x L x d
        return self.proj(attended.transpose(1, 2).reshape(n, length, dim))


class _MixFFN(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.depthwise = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        x = self.fc1(x)
        n, length, hidden = x.shape
        grid = self.depthwise(x.transpose(1, 2).reshape(n, hidden, height, width))
        return self.fc2(F.gelu(grid.flatten(2).transpose(1, 2)))


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, reduction: int, drop_path: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attention = _EfficientAttention(dim, heads, reduction)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = _MixFFN(dim, 4 * dim)
        self.drop_path = drop_path

    def _dropped(self, x: torch.Tensor) -> torch.Tensor:
        """Stochastic depth: drop the residual branch per sample while training."""
        if not self.training or self.drop_path == 0:
            return x
        keep = 1 - self.drop_path
        mask = x.new_empty(x.shape[0], 1, 1).bernoulli_(keep)
        return x * mask / keep

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        x = x + self._dropped(self.attention(self.norm1(x), height, width))
        return x + self._dropped(self.ffn(self.norm2(x), height, width))


class MixTransformer(nn.Module):
    def __init__(
        self,
        in_channels: int,
        dims: tuple[int, ...],
        heads: tuple[int, ...],
        depths: tuple[int, ...],
        reductions: tuple[int, ...],
        drop_path: float = 0.1,
    ) -> None:
        super().__init__()
        rates = torch.linspace(0, drop_path, sum(depths)).tolist()
        self.embeds, self.stages, self.norms = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        previous = in_channels
        for index, (dim, head, depth, reduction) in enumerate(
            zip(dims, heads, depths, reductions, strict=True)
        ):
            patch, stride = (7, 4) if index == 0 else (3, 2)
            self.embeds.append(_PatchEmbed(previous, dim, patch, stride))
            start = sum(depths[:index])
            self.stages.append(
                nn.ModuleList(_Block(dim, head, reduction, rates[start + i]) for i in range(depth))
            )
            self.norms.append(nn.LayerNorm(dim))
            previous = dim
        self.out_channels = list(dims)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for embed, blocks, norm in zip(self.embeds, self.stages, self.norms, strict=True):
            tokens, height, width = embed(x)
            for block in blocks:
                tokens = block(tokens, height, width)
            x = norm(tokens).transpose(1, 2).reshape(x.shape[0], tokens.shape[2], height, width)
            features.append(x)  # strides 4, 8, 16, 32
        return features


class SegFormer(SegmentationModel):
    size_divisor = 32

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        encoder: MixTransformer,
        aux_head: bool = False,
        decoder_width: int = 256,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.project = nn.ModuleList(nn.Conv2d(c, decoder_width, 1) for c in encoder.out_channels)
        self.fuse = conv_bn_relu(len(encoder.out_channels) * decoder_width, decoder_width, 1)
        self.dropout = nn.Dropout2d(0.1)
        self.classifier = nn.Conv2d(decoder_width, num_classes, 1)
        self.aux_head = AuxiliaryHead(encoder.out_channels[-2], num_classes) if aux_head else None

    def forward_padded(self, images: torch.Tensor) -> Decoded:
        features = self.encoder(images)
        stride4 = features[0]
        projected = [resize_to(p(f), stride4) for p, f in zip(self.project, features, strict=True)]
        fused = self.fuse(torch.cat(projected[::-1], dim=1))  # N x 256 x H/4 x W/4
        logits = resize_to(self.classifier(self.dropout(fused)), images)
        return Decoded(logits, features[-2])


# MiT-B0..B5 (the paper's Table 6): stage widths, blocks per stage, decoder width.
MIT_VARIANTS = {
    "b0": ((32, 64, 160, 256), (2, 2, 2, 2), 256),
    "b1": ((64, 128, 320, 512), (2, 2, 2, 2), 256),
    "b2": ((64, 128, 320, 512), (3, 4, 6, 3), 768),
    "b3": ((64, 128, 320, 512), (3, 4, 18, 3), 768),
    "b4": ((64, 128, 320, 512), (3, 8, 27, 3), 768),
    "b5": ((64, 128, 320, 512), (3, 6, 40, 3), 768),
}


def _segformer(variant: str):
    dims, depths, decoder_width = MIT_VARIANTS[variant]

    def build(
        num_classes: int,
        in_channels: int = 3,
        pretrained: bool = False,
        aux_head: bool = False,
        base_width: int | None = None,
    ) -> SegFormer:
        if pretrained:
            raise SemsegError(
                f"config key 'model.pretrained': semseg ships no MiT-{variant.upper()} "
                "ImageNet weights; load a file with model.weights=PATH"
            )
        # base_width scales every stage (the first stage's width), e.g. for small tests.
        scale = (base_width or dims[0]) / dims[0]
        widths = tuple(max(8, round(d * scale / 8) * 8) for d in dims)
        heads = tuple(math.gcd(h, w) for h, w in zip((1, 2, 5, 8), widths, strict=True))
        encoder = MixTransformer(
            in_channels, dims=widths, heads=heads, depths=depths, reductions=(8, 4, 2, 1)
        )
        width = max(16, round(decoder_width * scale))
        return SegFormer(num_classes, in_channels, encoder, aux_head, decoder_width=width)

    build.__name__ = f"segformer_{variant}"
    build.__doc__ = (
        f"SegFormer-{variant.upper()}: MiT-{variant.upper()} transformer encoder (stage "
        f"widths {dims}, {sum(depths)} blocks) with the all-MLP decoder ({decoder_width})."
    )
    return build


for _variant in MIT_VARIANTS:
    register_model(_segformer(_variant))
