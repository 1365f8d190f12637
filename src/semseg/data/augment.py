"""Configurable joint image/mask augmentation: a registry of transforms, named presets.

`data.augment` is an ordered list such as
    [{name: random_scale, min: 0.5, max: 2.0}, {name: crop, size: 512}, {name: hflip},
     {name: rotate, degrees: 30, p: 0.5}, {name: color_jitter, brightness: 0.2}]
Every entry is a registered transform with its own parameters and an optional
probability `p`. Geometric transforms move the mask with nearest-neighbour sampling and
fill new pixels with ignore_index; photometric ones never touch the mask. All run on
torchvision.transforms.v2 with tv_tensors.Mask.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from semseg.errors import SemsegError
from semseg.registry import Registry


class _ImageOnly(v2.Transform):
    """A photometric transform of uint8 images; masks pass through untouched."""

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if isinstance(inpt, tv_tensors.Image):
            return tv_tensors.wrap(self.apply(inpt.as_subclass(torch.Tensor), params), like=inpt)
        return inpt

    def apply(self, image: torch.Tensor, params: dict[str, Any]) -> torch.Tensor:
        raise NotImplementedError


class RandomScale(v2.Transform):
    """Resize by a factor drawn uniformly from [low, high], relative to the input size."""

    def __init__(self, low: float, high: float) -> None:
        super().__init__()
        self.low, self.high = low, high

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        height, width = v2.query_size(flat_inputs)
        factor = self.low + (self.high - self.low) * torch.rand(()).item()
        return {"size": [max(1, round(height * factor)), max(1, round(width * factor))]}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        # Masks go through `resize` too, which uses nearest neighbour for tv_tensors.Mask.
        return self._call_kernel(TF.resize, inpt, size=params["size"], antialias=True)


class RandomRotate90(v2.Transform):
    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        return {"turns": int(torch.randint(0, 4, ()).item())}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if isinstance(inpt, (tv_tensors.Image, tv_tensors.Mask)):
            return tv_tensors.wrap(inpt.rot90(params["turns"], dims=(-2, -1)), like=inpt)
        return inpt


class GridDistortion(v2.Transform):
    """Displace a coarse grid of control points at random and warp smoothly between them
    (as albumentations' GridDistortion); masks are warped with nearest neighbour."""

    def __init__(self, cells: int, limit: float, fill: dict) -> None:
        super().__init__()
        self.cells, self.limit, self.fill = cells, limit, fill

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        height, width = v2.query_size(flat_inputs)
        coarse = (torch.rand(1, 2, self.cells + 1, self.cells + 1) * 2 - 1) * self.limit
        field = torch.nn.functional.interpolate(
            coarse, size=(height, width), mode="bicubic", align_corners=True
        )
        return {"displacement": field.permute(0, 2, 3, 1)}  # 1 x H x W x 2, in [-1, 1] units

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        fill = self.fill.get(type(inpt), 0)
        return self._call_kernel(TF.elastic, inpt, displacement=params["displacement"], fill=fill)


class Gamma(_ImageOnly):
    def __init__(self, low: float, high: float) -> None:
        super().__init__()
        self.low, self.high = low, high

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        return {"gamma": self.low + (self.high - self.low) * torch.rand(()).item()}

    def apply(self, image: torch.Tensor, params: dict[str, Any]) -> torch.Tensor:
        return TF.adjust_gamma(image, params["gamma"])


class GaussianNoise(_ImageOnly):
    def __init__(self, sigma: float) -> None:
        super().__init__()
        self.sigma = sigma

    def apply(self, image: torch.Tensor, params: dict[str, Any]) -> torch.Tensor:
        noisy = image.float() + torch.randn(image.shape) * self.sigma
        return noisy.round().clamp(0, 255).to(image.dtype)


class Cutout(_ImageOnly):
    """Black out `count` random squares of side `size` (pixels) in the image only: the
    labels stay, so the model learns to infer hidden parts from context."""

    def __init__(self, size: int, count: int) -> None:
        super().__init__()
        self.size, self.count = size, count

    def apply(self, image: torch.Tensor, params: dict[str, Any]) -> torch.Tensor:
        image = image.clone()
        height, width = image.shape[-2:]
        for _ in range(self.count):
            y = int(torch.randint(0, max(1, height - self.size + 1), ()).item())
            x = int(torch.randint(0, max(1, width - self.size + 1), ()).item())
            image[..., y : y + self.size, x : x + self.size] = 0
        return image


# ---------------------------------------------------------------- registry

Builder = Callable[..., v2.Transform]

#: Each entry's info: `default_p`, the probability an entry without `p` is applied with.
AUGMENTATIONS: Registry[Builder] = Registry("augmentation", "data.augment", default_p=1.0)


def register_augmentation(name: str, default_p: float = 1.0) -> Callable[[Builder], Builder]:
    """Decorator registering a transform builder, so that `data.augment` can name it.

    Args:
        name: the augmentation's name.
        default_p: the probability it is applied with when the entry gives no `p`.

    The builder takes `fill` (a dict: tv_tensors.Image -> 0, tv_tensors.Mask ->
    ignore_index, for the pixels a geometric transform creates) and its own parameters
    as keywords, which configs set by name (`{name: mine, strength: 2}`). It returns a
    torchvision v2 transform, applied jointly to a uint8 tv_tensors.Image and its
    tv_tensors.Mask; outputs must keep those types (`tv_tensors.wrap`), and masks may
    only move with nearest-neighbour sampling.

    Raises:
        RuntimeError: the name is taken.
    """
    return AUGMENTATIONS.register(name, default_p=default_p)


@register_augmentation("hflip", default_p=0.5)
def _hflip(fill: dict) -> v2.Transform:
    return v2.RandomHorizontalFlip(p=1.0)


@register_augmentation("vflip", default_p=0.5)
def _vflip(fill: dict) -> v2.Transform:
    return v2.RandomVerticalFlip(p=1.0)


@register_augmentation("rotate90")
def _rotate90(fill: dict) -> v2.Transform:
    return RandomRotate90()


@register_augmentation("rotate")
def _rotate(fill: dict, degrees: float = 30.0) -> v2.Transform:
    return v2.RandomRotation(degrees, fill=fill)


@register_augmentation("affine")
def _affine(
    fill: dict,
    degrees: float = 15.0,
    shift: float = 0.1,
    scale: tuple[float, float] = (0.8, 1.2),
    shear: float = 5.0,
) -> v2.Transform:
    return v2.RandomAffine(
        degrees, translate=(shift, shift), scale=tuple(scale), shear=shear, fill=fill
    )


@register_augmentation("perspective", default_p=0.5)
def _perspective(fill: dict, distortion: float = 0.3) -> v2.Transform:
    return v2.RandomPerspective(distortion, p=1.0, fill=fill)


@register_augmentation("elastic", default_p=0.5)
def _elastic(fill: dict, alpha: float = 50.0, sigma: float = 5.0) -> v2.Transform:
    return v2.ElasticTransform(alpha=alpha, sigma=sigma, fill=fill)


@register_augmentation("grid_distortion", default_p=0.5)
def _grid_distortion(fill: dict, cells: int = 5, limit: float = 0.03) -> v2.Transform:
    return GridDistortion(cells, limit, fill)


@register_augmentation("random_resized_crop")
def _random_resized_crop(
    fill: dict, size: int | tuple[int, int] = 512, scale: tuple[float, float] = (0.25, 1.0)
) -> v2.Transform:
    return v2.RandomResizedCrop(size, scale=tuple(scale), antialias=True)


@register_augmentation("random_scale")
def _random_scale(fill: dict, min: float = 0.5, max: float = 2.0) -> v2.Transform:  # noqa: A002
    if not 0 < min <= max:
        raise ValueError("needs 0 < min <= max")
    return RandomScale(min, max)


@register_augmentation("crop")
def _crop(fill: dict, size: int | tuple[int, int] = 512) -> v2.Transform:
    return v2.RandomCrop(size, pad_if_needed=True, fill=fill)


@register_augmentation("color_jitter")
def _color_jitter(
    fill: dict,
    brightness: float = 0.2,
    contrast: float = 0.2,
    saturation: float = 0.2,
    hue: float = 0.0,
) -> v2.Transform:
    return v2.ColorJitter(brightness, contrast, saturation, hue)


@register_augmentation("hsv_shift")
def _hsv_shift(
    fill: dict, hue: float = 0.05, saturation: float = 0.3, value: float = 0.2
) -> v2.Transform:
    return v2.ColorJitter(brightness=value, saturation=saturation, hue=hue)


@register_augmentation("gamma")
def _gamma(fill: dict, min: float = 0.7, max: float = 1.5) -> v2.Transform:  # noqa: A002
    return Gamma(min, max)


@register_augmentation("gaussian_blur", default_p=0.5)
def _gaussian_blur(
    fill: dict, kernel_size: int = 5, sigma: tuple[float, float] = (0.1, 2.0)
) -> v2.Transform:
    return v2.GaussianBlur(kernel_size, sigma=tuple(sigma))


@register_augmentation("sharpen", default_p=0.5)
def _sharpen(fill: dict, factor: float = 2.0) -> v2.Transform:
    return v2.RandomAdjustSharpness(factor, p=1.0)


@register_augmentation("equalize", default_p=0.5)
def _equalize(fill: dict) -> v2.Transform:
    return v2.RandomEqualize(p=1.0)


@register_augmentation("gaussian_noise", default_p=0.5)
def _gaussian_noise(fill: dict, sigma: float = 8.0) -> v2.Transform:
    return GaussianNoise(sigma)


@register_augmentation("cutout", default_p=0.5)
def _cutout(fill: dict, size: int = 32, count: int = 1) -> v2.Transform:
    return Cutout(size, count)


# Crops without a size take data.crop_size.
PRESETS: dict[str, list[dict[str, Any]]] = {
    # Photos of objects and scenes (VOC, COCO, pets): the classic recipe.
    "natural": [
        {"name": "random_scale", "min": 0.5, "max": 2.0},
        {"name": "crop"},
        {"name": "hflip"},
        {"name": "color_jitter", "brightness": 0.25, "contrast": 0.25, "saturation": 0.25},
    ],
    # Road scenes (CamVid, Cityscapes): no vertical flips or big rotations, the sky is up.
    "driving": [
        {"name": "random_scale", "min": 0.5, "max": 2.0},
        {"name": "crop"},
        {"name": "hflip"},
        {"name": "color_jitter", "brightness": 0.3, "contrast": 0.3, "saturation": 0.3},
        {"name": "gaussian_blur", "p": 0.2},
    ],
    # Overhead imagery: no up or down, every rotation and flip is valid.
    "aerial": [
        {"name": "random_scale", "min": 0.75, "max": 1.5},
        {"name": "crop"},
        {"name": "rotate90"},
        {"name": "hflip"},
        {"name": "vflip"},
        {"name": "hsv_shift", "hue": 0.03},
    ],
    # Microscopy / radiology: small data, deformations and intensity changes.
    "medical": [
        {"name": "affine", "degrees": 15, "shift": 0.05, "scale": [0.9, 1.1], "shear": 5},
        {"name": "elastic", "alpha": 30, "sigma": 6, "p": 0.3},
        {"name": "crop"},
        {"name": "hflip"},
        {"name": "gamma", "min": 0.8, "max": 1.25},
        {"name": "gaussian_noise", "sigma": 5, "p": 0.3},
    ],
}


def build_augmentations(entries: list[dict[str, Any]], ignore_index: int) -> list[v2.Transform]:
    """The v2 transforms of a `data.augment` list, each wrapped in RandomApply(p)."""
    fill = {tv_tensors.Image: 0, tv_tensors.Mask: ignore_index}
    transforms = []
    for index, entry in enumerate(entries):
        key = f"data.augment[{index}]"
        params = dict(entry)
        name = params.pop("name", None)
        registered = AUGMENTATIONS.get(name, key=f"{key}.name")
        probability = float(params.pop("p", registered.info["default_p"]))
        if not 0 <= probability <= 1:
            raise SemsegError(f"config key '{key}.p': must be between 0 and 1")
        AUGMENTATIONS.check_parameters(name, params, key, reserved=("fill",))
        try:
            transform = registered.function(fill=fill, **params)
        except (TypeError, ValueError) as err:
            raise SemsegError(f"config key '{key}': bad {name} parameters ({err})") from None
        transforms.append(
            transform if probability >= 1 else v2.RandomApply([transform], p=probability)
        )
    return transforms
