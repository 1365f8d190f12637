"""SETR (Zheng et al., "Rethinking Semantic Segmentation from a Sequence-to-Sequence
Perspective with Transformers", 2021): a plain ViT encoder (timm's, with its position
embeddings resampled to any input grid) and two of the paper's decoders.

- `setr` (PUP, progressive upsampling): the last layer's tokens as a stride-16 map,
  then four rounds of 3x3 conv + BN + ReLU and 2x upsampling, and a 1x1 classifier.
- `setr_mla` (multi-level aggregation): four evenly spaced layers, each projected by a
  1x1 conv, summed top-down, refined by two 3x3 convs, upsampled 4x, concatenated and
  classified, then upsampled 4x.
The paper used ViT-Large; the default here is ViT-Small (`model.encoder` takes any timm
ViT, e.g. vit_base_patch16_224 or vit_large_patch16_384).
"""

from __future__ import annotations

import torch
from torch import nn

from semseg.models.base import AuxiliaryHead, Decoded, SegmentationModel, conv_bn_relu, resize_to
from semseg.models.pretrained import create_timm_model
from semseg.models.registry import register_model


class ViTEncoder(nn.Module):
    """A timm ViT returning the token maps (N x D x H/p x W/p) of the given layers."""

    def __init__(self, name: str, in_channels: int, pretrained: bool, layers: int = 4) -> None:
        super().__init__()
        self.vit = create_timm_model(
            name, in_channels, pretrained, num_classes=0, global_pool="", dynamic_img_size=True
        )
        depth = len(self.vit.blocks)
        self.indices = [depth * (i + 1) // layers - 1 for i in range(layers)]
        self.vit.prune_intermediate_layers(self.indices, prune_norm=True, prune_head=True)
        self.dim = self.vit.embed_dim
        self.patch = self.vit.patch_embed.patch_size[0]
        config = getattr(self.vit, "pretrained_cfg", None) or {}
        mean, std = config.get("mean"), config.get("std")
        self.normalization = (tuple(mean), tuple(std)) if mean and std else None

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.vit.forward_intermediates(
            x, indices=self.indices, output_fmt="NCHW", intermediates_only=True
        )


class SETR(SegmentationModel):
    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        encoder: str,
        pretrained: bool,
        aux_head: bool,
        decoder: str,
        width: int = 256,
    ) -> None:
        super().__init__()
        vit = ViTEncoder(encoder, in_channels, pretrained)
        self.use_encoder(vit, size_divisor=vit.patch)
        dim, self.decoder_kind = self.encoder.dim, decoder
        if decoder == "pup":
            steps = max(1, self.encoder.patch.bit_length() - 1)  # 4 for patch 16
            self.decoder = nn.ModuleList(
                conv_bn_relu(dim if i == 0 else width, width) for i in range(steps)
            )
            self.classifier = nn.Conv2d(width, num_classes, 1)
        else:
            self.project = nn.ModuleList(conv_bn_relu(dim, width, 1) for _ in range(4))
            self.refine = nn.ModuleList(
                nn.Sequential(conv_bn_relu(width, width), conv_bn_relu(width, width // 2))
                for _ in range(4)
            )
            self.classifier = nn.Conv2d(4 * (width // 2), num_classes, 1)
        self.aux_head = AuxiliaryHead(dim, num_classes) if aux_head else None

    def forward_padded(self, images: torch.Tensor) -> Decoded:
        layers = self.encoder(images)  # stride p (16)
        if self.decoder_kind == "pup":
            x = layers[-1]
            for block in self.decoder:
                x = nn.functional.interpolate(
                    block(x), scale_factor=2, mode="bilinear", align_corners=False
                )
            logits = self.classifier(x)
        else:
            projected = [
                project(layer) for project, layer in zip(self.project, layers, strict=True)
            ]
            for i in range(len(projected) - 2, -1, -1):  # top-down from the deepest layer
                projected[i] = projected[i] + projected[i + 1]
            refined = [refine(p) for refine, p in zip(self.refine, projected, strict=True)]
            logits = self.classifier(torch.cat(refined, dim=1))
        return Decoded(resize_to(logits, images), layers[1])


def _setr(decoder: str):
    def build(
        num_classes: int,
        in_channels: int = 3,
        encoder: str = "vit_small_patch16_224",
        pretrained: bool = False,
        aux_head: bool = False,
        base_width: int = 256,
    ) -> SETR:
        return SETR(num_classes, in_channels, encoder, pretrained, aux_head, decoder, base_width)

    build.__name__ = "setr" if decoder == "pup" else "setr_mla"
    kind = "progressive upsampling (PUP)" if decoder == "pup" else "multi-level aggregation"
    build.__doc__ = f"SETR: a ViT encoder (timm; ViT-S/16) with the {kind} decoder."
    return build


register_model(_setr("pup"))
register_model(_setr("mla"))
