"""Sampling for training: rare-class-aware image sampling and multi-scale batches.

rare_class: image i is drawn with probability proportional to sum_c n_ic / N_c^power,
where n_ic is its pixels of class c and N_c the class's pixels in the whole split. With
power 1 every class gets the same expected share of draws, spread over its images by how
much of the class each holds: an image with a third of all bicyclist pixels is drawn as
often as one with a third of all road pixels. Power 0 is (pixel-weighted) uniform
sampling; above 1 the rarest classes dominate. The per-image class histograms are counted
once per dataset (by fingerprint) and cached.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import WeightedRandomSampler

from semseg.data.base import SegmentationDataset
from semseg.data.stats import stats_cache_path
from semseg.errors import DataProblem


def image_class_pixels(
    dataset: SegmentationDataset,
    progress: Callable[[Iterable[int]], Iterable[int]] = iter,
    skip_broken: bool = False,
) -> np.ndarray:
    """N x C labelled pixels of each class in each image (cached by dataset fingerprint);
    with `skip_broken`, an unreadable sample's row stays 0."""
    path = stats_cache_path(dataset.fingerprint()).with_suffix(".images.npy")
    count = dataset.classes.num_classes
    if path.is_file():
        cached = np.load(path)
        if cached.shape == (len(dataset), count):
            return cached
    table = np.zeros((len(dataset), count), dtype=np.int64)
    for index in progress(range(len(dataset))):
        try:
            labels = dataset.load(index)[1].reshape(-1).long()
        except DataProblem:
            if not skip_broken:
                raise
            continue
        table[index] = torch.bincount(labels[labels < count], minlength=count).numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, table)
    return table


def rare_class_weights(table: np.ndarray, power: float) -> np.ndarray:
    """One sampling weight per image (see the module docstring)."""
    class_pixels = table.sum(0).astype(float)
    scale = np.where(class_pixels > 0, np.maximum(class_pixels, 1) ** -power, 0.0)
    weights = table @ scale
    floor = weights[weights > 0].min() if (weights > 0).any() else 1.0
    return np.where(weights > 0, weights, floor)  # every image can still be drawn


def rare_class_sampler(
    dataset: SegmentationDataset,
    power: float,
    generator: torch.Generator,
    progress: Callable[[Iterable[int]], Iterable[int]] = iter,
    skip_broken: bool = False,
) -> WeightedRandomSampler:
    weights = rare_class_weights(image_class_pixels(dataset, progress, skip_broken), power)
    return WeightedRandomSampler(
        torch.from_numpy(weights), num_samples=len(dataset), replacement=True, generator=generator
    )


def multiscale(batch: tuple[torch.Tensor, torch.Tensor], scales: tuple[float, float]):
    """Resize a whole batch by one random factor (images bilinear, masks nearest)."""
    images, masks = batch
    low, high = scales
    factor = low + (high - low) * torch.rand(()).item()
    size = [max(8, round(side * factor)) for side in images.shape[-2:]]
    images = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
    masks = F.interpolate(masks[:, None].float(), size=size, mode="nearest")[:, 0].long()
    return images, masks
