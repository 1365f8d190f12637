"""Encoders: backbones that return a feature pyramid.

Contract (as smp's EncoderMixin): `forward(x)` returns a list of N x C_i x H/r_i x W/r_i
features, shallow to deep; `out_channels[i]` and `reductions[i]` describe them;
`output_stride` is the deepest reduction. Names: any timm model (through
`features_only=True`), or a torchvision backbone with the `tv_` prefix: tv_resnet18/34/50/
101, tv_mobilenet_v3_large/small, tv_vgg16_bn.
"""

from __future__ import annotations

from collections.abc import Callable

import timm
import torch
from torch import nn

from semseg.config import IMAGENET_MEAN, IMAGENET_STD
from semseg.errors import SemsegError
from semseg.models.base import Normalization
from semseg.models.pretrained import create_timm_features, torchvision_model


class Encoder(nn.Module):
    out_channels: list[int]
    reductions: list[int]
    #: (mean, std) the weights were trained with: the pretrained config's (timm records
    #: it per weight set: `tf_*` weights use 0.5 / 0.5), ImageNet's for torchvision.
    normalization: Normalization | None = None

    @property
    def output_stride(self) -> int:
        return self.reductions[-1]

    def stage_parameters(self, stages: int) -> list[nn.Parameter]:
        """The parameters that compute the first `stages` features (stem included)."""
        raise NotImplementedError

    def last_stage(self) -> nn.Module:
        """The module that computes the deepest feature."""
        raise NotImplementedError

    def freeze_stages(self, stages: int) -> None:
        """Keep the first `stages` stages at their (pretrained) weights: no gradients, so
        backward stops above them, which saves the costly high-resolution part of the
        backward pass. Their BatchNorm statistics still follow the data."""
        if not 0 <= stages <= len(self.out_channels):
            raise SemsegError(
                f"config key 'model.frozen_stages': {stages} is out of range; this "
                f"encoder has {len(self.out_channels)} stages"
            )
        for parameter in self.stage_parameters(stages):
            parameter.requires_grad_(False)


class TimmEncoder(Encoder):
    def __init__(
        self, name: str, in_channels: int, pretrained: bool, output_stride: int, **options
    ) -> None:
        super().__init__()
        if output_stride != 32:
            options["output_stride"] = output_stride
        self.model = create_timm_features(name, in_channels, pretrained, **options)
        self.out_channels = list(self.model.feature_info.channels())
        self.reductions = list(self.model.feature_info.reduction())
        config = getattr(self.model, "pretrained_cfg", None) or {}
        if config.get("mean") and config.get("std"):
            self.normalization = (tuple(config["mean"]), tuple(config["std"]))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.model(x)

    def last_stage(self) -> nn.Module:
        return self.model.get_submodule(self.model.feature_info.module_name()[-1])

    def stage_parameters(self, stages: int) -> list[nn.Parameter]:
        if stages == 0:
            return []
        # timm registers modules in forward order: everything up to the module that
        # returns feature `stages - 1` computes the first `stages` features.
        last_module = self.model.feature_info.module_name()[stages - 1]
        named = list(self.model.named_parameters())
        end = max(i for i, (name, _) in enumerate(named) if name.startswith(last_module + "."))
        return [parameter for _, parameter in named[: end + 1]]


class _StagedEncoder(Encoder):
    """A torchvision backbone cut into stages; each stage's output is one feature."""

    normalization = (IMAGENET_MEAN, IMAGENET_STD)  # all torchvision ImageNet weights

    def __init__(self, stages: list[nn.Module], out_channels: list[int], reductions: list[int]):
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.out_channels = out_channels
        self.reductions = reductions

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features

    def stage_parameters(self, stages: int) -> list[nn.Parameter]:
        return [p for stage in self.stages[:stages] for p in stage.parameters()]

    def last_stage(self) -> nn.Module:
        return self.stages[-1]


def _adapt_first_conv(conv: nn.Conv2d, in_channels: int) -> nn.Conv2d:
    """A first convolution for `in_channels` inputs; RGB weights are averaged for gray."""
    if in_channels == conv.in_channels:
        return conv
    new = nn.Conv2d(
        in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        bias=conv.bias is not None,
    )
    with torch.no_grad():
        new.weight.copy_(conv.weight.mean(1, keepdim=True).repeat(1, in_channels, 1, 1))
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    return new


def _tv_resnet(depth: int) -> Callable[[int, bool, int], Encoder]:
    def build(in_channels: int, pretrained: bool, output_stride: int) -> Encoder:
        name = f"resnet{depth}"
        dilate = {32: [False, False, False], 16: [False, False, True], 8: [False, True, True]}
        if output_stride not in dilate:
            raise SemsegError("config key 'model.output_stride': must be 8, 16 or 32")
        if depth < 50 and output_stride != 32:
            raise SemsegError(
                f"config key 'model.output_stride': torchvision {name} (basic "
                "blocks) cannot be dilated; use tv_resnet50/101 or a timm resnet"
            )
        options = {"replace_stride_with_dilation": dilate[output_stride]} if depth >= 50 else {}
        net = torchvision_model(name, pretrained, **options)
        net.conv1 = _adapt_first_conv(net.conv1, in_channels)
        widths = [64, 64, 128, 256, 512] if depth < 50 else [64, 256, 512, 1024, 2048]
        strides = [2, 4, 8, 16, 32]
        reductions = [min(s, output_stride) for s in strides]
        stages = [
            nn.Sequential(net.conv1, net.bn1, net.relu),
            nn.Sequential(net.maxpool, net.layer1),
            net.layer2,
            net.layer3,
            net.layer4,
        ]
        return _StagedEncoder(stages, widths, reductions)

    return build


def _tv_mobilenet_v3(size: str) -> Callable[[int, bool, int], Encoder]:
    def build(in_channels: int, pretrained: bool, output_stride: int) -> Encoder:
        name = f"mobilenet_v3_{size}"
        if output_stride not in (16, 32):
            raise SemsegError("config key 'model.output_stride': MobileNetV3 supports 16 or 32")
        features = torchvision_model(name, pretrained, dilated=output_stride == 16).features
        features[0][0] = _adapt_first_conv(features[0][0], in_channels)
        # Stages end before each stride-2 block of the undilated network.
        reference = torchvision_model(name, pretrained=False).features
        starts = [i for i, block in enumerate(reference) if getattr(block, "_is_cn", False)]
        bounds = [0, *starts, len(features)]
        stages = [features[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        channels = [_last_channels(stage) for stage in stages]
        reductions = [min(2 ** (i + 1), output_stride) for i in range(len(stages))]
        return _StagedEncoder(stages, channels, reductions)

    return build


def _last_channels(stage: nn.Module) -> int:
    return [m for m in stage.modules() if isinstance(m, nn.Conv2d)][-1].out_channels


def tv_vgg16_bn_features(in_channels: int, pretrained: bool) -> nn.Sequential:
    features = torchvision_model("vgg16_bn", pretrained).features
    features[0] = _adapt_first_conv(features[0], in_channels)
    return features


def _tv_vgg16_bn(in_channels: int, pretrained: bool, output_stride: int) -> Encoder:
    if output_stride != 32:
        raise SemsegError("config key 'model.output_stride': tv_vgg16_bn supports only 32")
    features = tv_vgg16_bn_features(in_channels, pretrained)
    pools = [i for i, layer in enumerate(features) if isinstance(layer, nn.MaxPool2d)]
    bounds = [0, *[p + 1 for p in pools]]
    stages = [features[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    return _StagedEncoder(stages, [64, 128, 256, 512, 512], [2, 4, 8, 16, 32])


TORCHVISION_ENCODERS: dict[str, Callable[[int, bool, int], Encoder]] = {
    "tv_resnet18": _tv_resnet(18),
    "tv_resnet34": _tv_resnet(34),
    "tv_resnet50": _tv_resnet(50),
    "tv_resnet101": _tv_resnet(101),
    "tv_mobilenet_v3_large": _tv_mobilenet_v3("large"),
    "tv_mobilenet_v3_small": _tv_mobilenet_v3("small"),
    "tv_vgg16_bn": _tv_vgg16_bn,
}


def build_encoder(
    name: str,
    in_channels: int = 3,
    pretrained: bool = False,
    output_stride: int = 32,
    max_reduction: int | None = None,
) -> Encoder:
    """The encoder `name`; `max_reduction` keeps only the stages up to that stride (the
    deeper ones are not built, so no parameter goes without a gradient)."""
    if name in TORCHVISION_ENCODERS:
        encoder = TORCHVISION_ENCODERS[name](in_channels, pretrained, output_stride)
        if max_reduction is not None:
            kept = sum(r <= max_reduction for r in encoder.reductions)
            encoder.stages = encoder.stages[:kept]
            encoder.out_channels = encoder.out_channels[:kept]
            encoder.reductions = encoder.reductions[:kept]
        return encoder
    if name.startswith("tv_") or not timm.is_model(name):
        known = ", ".join(TORCHVISION_ENCODERS)
        raise SemsegError(
            f"config key 'model.encoder': unknown encoder {name!r}; use a timm model name "
            f"(timm.list_models()) or one of {known}"
        )
    encoder = TimmEncoder(name, in_channels, pretrained, output_stride)
    if max_reduction is not None and max(encoder.reductions) > max_reduction:
        kept = sum(r <= max_reduction for r in encoder.reductions)
        # timm builds a features model only up to its last requested feature.
        options = {"out_indices": tuple(range(kept))}
        encoder = TimmEncoder(name, in_channels, pretrained, output_stride, **options)
    return encoder


def apply_multi_grid(encoder: Encoder, grid: list[int]) -> None:
    """DeepLabv3's multi-grid: the residual blocks of the encoder's last stage dilate
    their 3x3 conv by the stage's rate times grid[i] (e.g. [1, 2, 4]: rates 2, 4, 8 at
    output stride 16). The weights stay; only the sampling of the conv changes."""
    stage = encoder.last_stage()
    blocks = [b for b in stage.children() if isinstance(getattr(b, "conv2", None), nn.Conv2d)]
    if not blocks:
        raise SemsegError(
            "config key 'model.multi_grid': needs a ResNet-style encoder (residual blocks "
            "with a 3x3 conv2), e.g. tv_resnet50 or a timm resnet; remove the key"
        )
    if len(grid) != len(blocks):
        raise SemsegError(
            f"config key 'model.multi_grid': {len(grid)} rates for the {len(blocks)} blocks "
            f"of the encoder's last stage; give {len(blocks)}, e.g. {[1, 2, 4][: len(blocks)]}"
        )
    unit = max(block.conv2.dilation[0] for block in blocks)
    for block, rate in zip(blocks, grid, strict=True):
        conv = block.conv2
        conv.dilation = (unit * rate, unit * rate)
        conv.padding = (unit * rate * (conv.kernel_size[0] // 2),) * 2


def freeze_encoder_stages(model: nn.Module, stages: int) -> None:
    """`model.frozen_stages`: freeze the first stages of the model's pyramid encoder."""
    encoder = getattr(model, "encoder", None)
    if not isinstance(encoder, Encoder):
        raise SemsegError(
            "config key 'model.frozen_stages': this model has no encoder with stages "
            "(use model.encoder=..., e.g. efficientnet_lite0), or remove the key"
        )
    encoder.freeze_stages(stages)
