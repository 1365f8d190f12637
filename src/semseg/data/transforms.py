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
from torchvision.transforms.v2 import functional as TF

from semseg.config import DataConfig


class RandomScale(v2.Transform):
    """Resize by a factor drawn uniformly from `scale_range`, relative to the input size."""

    def __init__(self, scale_range: tuple[float, float]) -> None:
        super().__init__()
        self.scale_range = scale_range

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        height, width = v2.query_size(flat_inputs)
        low, high = self.scale_range
        factor = low + (high - low) * torch.rand(()).item()
        return {"size": [max(1, round(height * factor)), max(1, round(width * factor))]}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        # Masks go through `resize` too, which uses nearest neighbour for tv_tensors.Mask.
        return self._call_kernel(TF.resize, inpt, size=params["size"], antialias=True)


class _Preset:
    def __init__(self, transforms: list[v2.Transform]) -> None:
        self.transforms = v2.Compose(transforms)

    def __call__(
        self, image: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self.transforms(tv_tensors.Image(image), tv_tensors.Mask(mask))
        return image.as_subclass(torch.Tensor), mask.as_subclass(torch.Tensor).long()


def _to_normalised_float(data: DataConfig) -> list[v2.Transform]:
    mean, std = list(data.mean), list(data.std)
    if data.image_mode == "gray":  # one channel: the average of the RGB statistics
        mean, std = [sum(mean) / 3], [sum(std) / 3]
    return [
        v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True),
        v2.Normalize(mean=mean, std=std),
    ]


def train_preset(data: DataConfig, ignore_index: int) -> _Preset:
    """Random scale, crop (padded with ignore_index), flip, colour jitter, normalise."""
    transforms: list[v2.Transform] = [RandomScale(data.scale_range)]
    transforms.append(
        v2.RandomCrop(
            data.crop_size,
            pad_if_needed=True,
            fill={tv_tensors.Image: 0, tv_tensors.Mask: ignore_index},
        )
    )
    if data.hflip:
        transforms.append(v2.RandomHorizontalFlip())
    if data.color_jitter > 0:
        strength = data.color_jitter
        transforms.append(v2.ColorJitter(strength, strength, strength, hue=min(0.5, strength / 4)))
    return _Preset(transforms + _to_normalised_float(data))


def eval_preset(data: DataConfig) -> _Preset:
    """Normalise only: evaluation sees the image at its stored size."""
    return _Preset(_to_normalised_float(data))
