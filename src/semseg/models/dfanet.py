"""DFANet (Li et al., "Deep Feature Aggregation for Real-Time Semantic Segmentation",
2019), from scratch.

Three light Xception ("backbone A") passes with feature reuse: each later backbone
starts from its predecessor's upsampled attention output concatenated with the
predecessor's stride-4 stage (sub-network aggregation), and every later stage also takes
the predecessor's stage of the same resolution (sub-stage aggregation). Each backbone
ends in fc attention (global pooling, fully connected layers, channel gating). The
decoder adds the three backbones' shallow features (to stride 4) and their attention
outputs (each classified by a 1x1 conv) and upsamples 4x.
"""

from __future__ import annotations

import torch
from torch import nn

from semseg.models.base import AuxiliaryHead, Decoded, SegmentationModel, conv_bn_relu, resize_to
from semseg.models.registry import register_model


class _SeparableBlock(nn.Module):
    """Xception block: three depthwise-separable 3x3 convs (the first may stride), and a
    1x1 (strided) shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        layers = []
        for i in range(3):
            source = in_channels if i == 0 else out_channels
            layers += [
                nn.Conv2d(source, source, 3, stride if i == 0 else 1, 1, groups=source, bias=False),
                nn.Conv2d(source, out_channels, 1, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True),
            ]
        self.body = nn.Sequential(*layers)
        # The strided 1x1 shortcut as "take every stride-th pixel, then a 1x1 conv": the
        # same function, but oneDNN's weight gradient of a strided 1x1 conv on
        # channels_last inputs with few channels (the first block's 8) corrupts the heap
        # (oneDNN issue 6035; crashed CamVid training on torch 2.7 and 2.14).
        self.stride = stride
        self.shortcut = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x[:, :, :: self.stride, :: self.stride])


def _stage(in_channels: int, out_channels: int, blocks: int) -> nn.Sequential:
    return nn.Sequential(
        *(
            _SeparableBlock(
                in_channels if i == 0 else out_channels, out_channels, 2 if i == 0 else 1
            )
            for i in range(blocks)
        )
    )


class _FCAttention(nn.Module):
    def __init__(self, channels: int, hidden: int = 1000) -> None:
        super().__init__()
        self.fc = nn.Linear(channels, hidden)
        self.gate = nn.Sequential(
            nn.Conv2d(hidden, channels, 1, bias=False), nn.BatchNorm2d(channels), nn.Sigmoid()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.fc(x.mean((2, 3)))[:, :, None, None]
        return x * self.gate(pooled)


class _Backbone(nn.Module):
    """enc2, enc3, enc4 and fc attention; `reused` (the previous backbone's enc3 and enc4
    outputs) join the inputs of enc3 and enc4."""

    def __init__(self, in_channels: int, widths: tuple[int, int, int], reuse: bool) -> None:
        super().__init__()
        w2, w3, w4 = widths
        self.enc2 = _stage(in_channels, w2, 4)
        self.enc3 = _stage(w2 + (w3 if reuse else 0), w3, 6)
        self.enc4 = _stage(w3 + (w4 if reuse else 0), w4, 4)
        self.attention = _FCAttention(w4)

    def forward(self, x: torch.Tensor, reused: list[torch.Tensor] | None = None):
        e2 = self.enc2(x)
        e3 = self.enc3(e2 if reused is None else torch.cat([e2, resize_to(reused[0], e2)], 1))
        e4 = self.enc4(e3 if reused is None else torch.cat([e3, resize_to(reused[1], e3)], 1))
        return [e2, e3, e4, self.attention(e4)]


class DFANet(SegmentationModel):
    size_divisor = 64

    def __init__(self, num_classes: int, in_channels: int, aux_head: bool, width: int) -> None:
        super().__init__()
        widths = (width, 2 * width, 4 * width)  # 48, 96, 192 in the paper
        self.stem = conv_bn_relu(in_channels, 8, stride=2)
        self.backbones = nn.ModuleList(
            [
                _Backbone(8, widths, reuse=False),
                _Backbone(widths[0] + widths[2], widths, reuse=True),
                _Backbone(widths[0] + widths[2], widths, reuse=True),
            ]
        )
        self.shallow = nn.ModuleList(conv_bn_relu(widths[0], 32, 1) for _ in range(3))
        self.shallow_classifier = nn.Sequential(conv_bn_relu(32, 32), nn.Conv2d(32, num_classes, 1))
        self.deep = nn.ModuleList(nn.Conv2d(widths[2], num_classes, 1) for _ in range(3))
        self.aux_head = AuxiliaryHead(widths[2], num_classes) if aux_head else None

    def forward_padded(self, images: torch.Tensor) -> Decoded:
        x, reused, outputs = self.stem(images), None, []
        for backbone in self.backbones:
            e2, e3, e4, attended = backbone(x, reused)
            outputs.append((e2, attended))
            x = torch.cat([e2, resize_to(attended, e2)], 1)  # the next backbone's input
            reused = [e3, e4]
        stride4 = outputs[0][0]
        shallow = sum(
            resize_to(conv(e2), stride4)
            for conv, (e2, _) in zip(self.shallow, outputs, strict=True)
        )
        logits = self.shallow_classifier(shallow) + sum(
            resize_to(conv(a), stride4) for conv, (_, a) in zip(self.deep, outputs, strict=True)
        )
        return Decoded(resize_to(logits, images), outputs[0][1])


@register_model
def dfanet(
    num_classes: int, in_channels: int = 3, aux_head: bool = False, base_width: int = 48
) -> DFANet:
    """DFANet: three light Xception backbones with feature reuse, from scratch."""
    return DFANet(num_classes, in_channels, aux_head, base_width)
