"""`shapes`: a built-in dataset generated from a seed, in memory, with no files.

Each image has a textured, noisy, pale background and two to five overlapping shapes
(circle, square, triangle, cross) of random size and rotation. Each class has a hue family
(random shade and brightness) and its outline, so a small model learns the task in about a
minute on a CPU, and must still get boundaries and occlusions right. As in PASCAL VOC, a
thin band on object borders is labelled ignore (255). Sample `i` of a split depends only on
(seed, split, i), so the data is the same in every process, in any order.
"""

from __future__ import annotations

import numpy as np

from semseg.classes import ClassSet
from semseg.config import DataConfig
from semseg.data.base import InMemoryDataset
from semseg.data.registry import register_format
from semseg.errors import SemsegError

SHAPES_CLASSES = ClassSet(
    names=("background", "circle", "square", "triangle", "cross"),
    palette=((0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200)),
)
_SPLIT_CODES = {"train": 1, "val": 2, "test": 3}


@register_format("shapes")
def read_shapes(data: DataConfig, split: str) -> InMemoryDataset:
    """Splits train and val (sizes from data.shapes) and test (the size of val)."""
    shapes = data.shapes
    count = shapes.num_train if split == "train" else shapes.num_val
    images, masks = generate_shapes(count, shapes.size, shapes.seed, split)
    if data.image_mode == "gray":
        images = images.mean(axis=3, keepdims=True).round().astype(np.uint8)
    return InMemoryDataset(images, masks, SHAPES_CLASSES, prefix=f"shapes_{split}")


def generate_shapes(
    num_images: int, size: int, seed: int, split: str
) -> tuple[np.ndarray, np.ndarray]:
    """Images N x H x W x 3 uint8 and masks N x H x W uint8 (255 on object borders)."""
    if split not in _SPLIT_CODES:
        raise SemsegError(f"shapes has splits {', '.join(_SPLIT_CODES)}, not {split!r}")
    images = np.empty((num_images, size, size, 3), dtype=np.uint8)
    masks = np.empty((num_images, size, size), dtype=np.uint8)
    for index in range(num_images):
        rng = np.random.default_rng([seed, _SPLIT_CODES[split], index])
        images[index], masks[index] = _draw_sample(rng, size)
    return images, masks


def _draw_sample(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    image = _background(rng, xs, ys)
    label = np.zeros((size, size), dtype=np.uint8)
    for _ in range(rng.integers(2, 6)):
        class_index = int(rng.integers(1, SHAPES_CLASSES.num_classes))
        radius = rng.uniform(0.09, 0.2) * size
        cx, cy = rng.uniform(radius * 0.5, size - radius * 0.5, size=2)
        angle = rng.uniform(0, 2 * np.pi)
        inside = _SHAPE_TESTS[class_index](xs - cx, ys - cy, radius, angle)
        colour = _object_colour(rng, class_index)
        shading = 1 + 0.15 * rng.standard_normal() * (xs - cx) / radius  # a soft gradient
        image[inside] = (colour * shading[..., None])[inside]
        label[inside] = class_index  # later shapes occlude earlier ones
    image += rng.normal(0, 12, size=image.shape)
    label[_borders(label)] = SHAPES_CLASSES.ignore_index
    return np.clip(image, 0, 255).astype(np.uint8), label


# Hue of each foreground class (0..1 on the colour wheel): red, green, yellow, blue. With a
# shared hue, square and triangle were not told apart within the quick start's minute.
_CLASS_HUES = {1: 0.0, 2: 0.33, 3: 0.16, 4: 0.62}


def _hsv_to_rgb(hue: float, saturation: float, value: float) -> np.ndarray:
    channel_offsets = np.array([0.0, 2 / 3, 1 / 3])  # r, g, b
    k = (hue + channel_offsets) * 6 % 6
    weights = np.clip(np.abs(k - 3) - 1, 0, 1)
    return 255 * value * (1 - saturation + saturation * weights)


def _object_colour(rng: np.random.Generator, class_index: int) -> np.ndarray:
    hue = (_CLASS_HUES[class_index] + rng.uniform(-0.06, 0.06)) % 1
    return _hsv_to_rgb(hue, rng.uniform(0.6, 1.0), rng.uniform(0.55, 1.0))


def _background(rng: np.random.Generator, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """A pale random colour with sinusoidal stripes at a random frequency and angle."""
    base = _hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.0, 0.3), rng.uniform(0.35, 0.85))
    angle = rng.uniform(0, np.pi)
    frequency = rng.uniform(0.1, 0.6)
    stripes = np.sin(frequency * (np.cos(angle) * xs + np.sin(angle) * ys))
    amplitude = rng.uniform(10, 40, size=3)
    return base + stripes[..., None] * amplitude


def _rotate(dx: np.ndarray, dy: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    c, s = np.cos(angle), np.sin(angle)
    return c * dx + s * dy, -s * dx + c * dy


def _circle(dx: np.ndarray, dy: np.ndarray, r: float, angle: float) -> np.ndarray:
    return dx**2 + dy**2 <= r**2


def _square(dx: np.ndarray, dy: np.ndarray, r: float, angle: float) -> np.ndarray:
    u, v = _rotate(dx, dy, angle)
    half = r * 0.8
    return (np.abs(u) <= half) & (np.abs(v) <= half)


def _triangle(dx: np.ndarray, dy: np.ndarray, r: float, angle: float) -> np.ndarray:
    # Equilateral: inside all three half-planes whose normals are 120 degrees apart.
    inside = np.ones_like(dx, dtype=bool)
    for k in range(3):
        u, _ = _rotate(dx, dy, angle + k * 2 * np.pi / 3)
        inside &= u <= r * 0.5
    return inside


def _cross(dx: np.ndarray, dy: np.ndarray, r: float, angle: float) -> np.ndarray:
    u, v = _rotate(dx, dy, angle)
    arm = r * 0.3
    return ((np.abs(u) <= r) & (np.abs(v) <= arm)) | ((np.abs(v) <= r) & (np.abs(u) <= arm))


_SHAPE_TESTS = {1: _circle, 2: _square, 3: _triangle, 4: _cross}


def _borders(label: np.ndarray) -> np.ndarray:
    """Pixels with a 4-neighbour of another class: a band about two pixels wide."""
    border = np.zeros(label.shape, dtype=bool)
    differs_v = label[1:, :] != label[:-1, :]
    differs_h = label[:, 1:] != label[:, :-1]
    border[1:, :] |= differs_v
    border[:-1, :] |= differs_v
    border[:, 1:] |= differs_h
    border[:, :-1] |= differs_h
    return border
