"""Joint image/mask transform presets on torchvision.transforms.v2.

Masks travel as `tv_tensors.Mask`, so every geometric op resizes them with nearest
neighbour and pads them with ignore_index; photometric ops leave them untouched. A preset
is called as `preset(image, mask)` with a uint8 C x H x W image and an H x W mask and
returns a normalised float image and an int64 mask.
"""

from __future__ import annotations

from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from semseg.config import DataConfig
from semseg.data.augment import PRESETS, build_augmentations


class _Preset:
    def __init__(self, transforms: list[v2.Transform]) -> None:
        self.transforms = v2.Compose(transforms)

    def __call__(
        self, image: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self.transforms(tv_tensors.Image(image), tv_tensors.Mask(mask))
        return image.as_subclass(torch.Tensor), mask.as_subclass(torch.Tensor).long()


def _to_normalised_float(data: DataConfig) -> list[v2.Transform]:
    mean, std = map(list, data.normalization())
    if data.image_mode == "gray":  # one channel: the average of the RGB statistics
        mean, std = [sum(mean) / 3], [sum(std) / 3]
    return [
        v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True),
        v2.Normalize(mean=mean, std=std),
    ]


def default_augment(data: DataConfig) -> list[dict[str, Any]]:
    """The pipeline without `data.augment`: random scale (data.scale_range), crop padded
    with ignore (data.crop_size), horizontal flip, colour jitter (data.color_jitter)."""
    low, high = data.scale_range
    entries: list[dict[str, Any]] = [
        {"name": "random_scale", "min": low, "max": high},
        {"name": "crop", "size": data.crop_size},
    ]
    if data.hflip:
        entries.append({"name": "hflip"})
    if data.color_jitter > 0:
        strength = data.color_jitter
        gray = data.image_mode == "gray"  # saturation and hue need colour channels
        entries.append(
            {
                "name": "color_jitter",
                "brightness": strength,
                "contrast": strength,
                "saturation": 0.0 if gray else strength,
                "hue": 0.0 if gray else min(0.5, strength / 4),
            }
        )
    return entries


def augment_entries(data: DataConfig) -> list[dict[str, Any]]:
    """data.augment, else the named preset, else the default; crops default to crop_size."""
    if data.augment is not None:
        entries = data.augment
    elif data.augment_preset is not None:
        entries = PRESETS[data.augment_preset]
    else:
        return default_augment(data)
    sized = ("crop", "random_resized_crop")
    return [{"size": data.crop_size, **e} if e.get("name") in sized else dict(e) for e in entries]


def train_preset(data: DataConfig, ignore_index: int) -> _Preset:
    """The configured augmentation pipeline, then normalisation."""
    augmentations = build_augmentations(augment_entries(data), ignore_index)
    return _Preset(augmentations + _to_normalised_float(data))


def eval_preset(data: DataConfig) -> _Preset:
    """Normalise only: evaluation sees the image at its stored size."""
    return _Preset(_to_normalised_float(data))
