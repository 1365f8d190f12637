"""Class statistics of a dataset split and the class weights derived from them.

Median-frequency balancing (Eigen & Fergus 2015, used by SegNet): the frequency of class c
is its pixel count divided by the labelled pixels of the images that contain c, and
weight(c) = median(frequencies) / frequency(c). ENet (Paszke et al. 2016):
weight(c) = 1 / ln(1.02 + p(c)) with p(c) the class's share of all labelled pixels.
Classes that never occur get weight 0. Ignore pixels count nowhere.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from semseg.data.base import SegmentationDataset
from semseg.errors import DataProblem, SemsegError
from semseg.files import write_json


@dataclass
class ClassStats:
    class_names: list[str]
    pixels: list[int] = field(default_factory=list)  # labelled pixels of each class
    images: list[int] = field(default_factory=list)  # images containing each class
    pixels_of_images_with: list[int] = field(default_factory=list)
    num_images: int = 0
    other_pixels: int = 0  # ignore (and any value outside the classes)

    def __post_init__(self) -> None:
        count = len(self.class_names)
        self.pixels = self.pixels or [0] * count
        self.images = self.images or [0] * count
        self.pixels_of_images_with = self.pixels_of_images_with or [0] * count

    def add(self, labels: torch.Tensor | np.ndarray) -> None:
        """Count one image's H x W label mask."""
        values = torch.as_tensor(np.asarray(labels)).reshape(-1).long()
        count = len(self.class_names)
        histogram = torch.bincount(values[values < count], minlength=count).tolist()
        labelled = sum(histogram)
        self.other_pixels += values.numel() - labelled
        for index, pixels in enumerate(histogram):
            if pixels:
                self.pixels[index] += pixels
                self.images[index] += 1
                self.pixels_of_images_with[index] += labelled
        self.num_images += 1

    @property
    def share(self) -> list[float]:
        """Each class's share of the labelled pixels."""
        total = sum(self.pixels)
        return [p / total if total else 0.0 for p in self.pixels]

    @property
    def share_of_all(self) -> list[float]:
        """Each class's share of all pixels, ignore included (as dataset papers report)."""
        total = sum(self.pixels) + self.other_pixels
        return [p / total if total else 0.0 for p in self.pixels]

    def median_frequency_weights(self) -> list[float]:
        frequency = [
            p / n if n else 0.0
            for p, n in zip(self.pixels, self.pixels_of_images_with, strict=True)
        ]
        present = [f for f in frequency if f > 0]
        if not present:
            return [0.0] * len(frequency)
        median = float(np.median(present))
        return [median / f if f > 0 else 0.0 for f in frequency]

    def enet_weights(self, c: float = 1.02) -> list[float]:
        return [
            1 / math.log(c + p) if pixels else 0.0
            for p, pixels in zip(self.share, self.pixels, strict=True)
        ]

    def weights(self, rule: str) -> list[float]:
        return self.enet_weights() if rule == "enet" else self.median_frequency_weights()

    def to_dict(self) -> dict:
        return asdict(self) | {
            "share": self.share,
            "weights": {
                "median_frequency": self.median_frequency_weights(),
                "enet": self.enet_weights(),
            },
        }

    @classmethod
    def from_dict(cls, data: dict) -> ClassStats:
        return cls(
            class_names=list(data["class_names"]),
            pixels=list(data["pixels"]),
            images=list(data["images"]),
            pixels_of_images_with=list(data["pixels_of_images_with"]),
            num_images=int(data["num_images"]),
            other_pixels=int(data.get("other_pixels", 0)),
        )


def collect_stats(
    dataset: SegmentationDataset,
    progress: Callable[[Iterable[int]], Iterable[int]] = iter,
    skip_broken: bool = False,
) -> ClassStats:
    """Count every sample's labels; with `skip_broken` (data.on_error=skip) a sample that
    cannot be read counts for nothing instead of stopping."""
    stats = ClassStats(list(dataset.classes.names))
    for index in progress(range(len(dataset))):
        try:
            stats.add(dataset.load(index)[1])
        except DataProblem:
            if not skip_broken:
                raise
    return stats


def stats_cache_path(fingerprint: str) -> Path:
    """Where statistics of a dataset (by fingerprint) are kept between runs."""
    base = Path(os.environ.get("SEMSEG_CACHE", Path.home() / ".cache" / "semseg"))
    return base / "stats" / f"{fingerprint}.json"


def save_stats(path: Path, stats: ClassStats, extra: dict) -> None:
    write_json(path, extra | stats.to_dict())


def load_stats(path: Path) -> ClassStats:
    try:
        return ClassStats.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError) as err:
        raise SemsegError(f"{path}: unreadable class statistics ({err}); delete it") from None


def dataset_stats(
    dataset: SegmentationDataset,
    progress: Callable[[Iterable[int]], Iterable[int]] = iter,
    skip_broken: bool = False,
) -> ClassStats:
    """Class statistics of this exact dataset: from the cache (written by `semseg data
    check` or an earlier run), else counted now and cached."""
    path = stats_cache_path(dataset.fingerprint())
    if path.is_file():
        stats = load_stats(path)
    else:
        stats = collect_stats(dataset, progress, skip_broken)
        save_stats(path, stats, {"fingerprint": dataset.fingerprint()})
    if stats.class_names != list(dataset.classes.names):
        raise SemsegError(f"{path}: statistics are for other classes; delete the file")
    return stats


def smoothed_prior(class_pixels: list[int] | torch.Tensor) -> torch.Tensor:
    """Each class's share of the labelled pixels, with one pixel added to every class so
    that an absent class has no log(0) (float64)."""
    counts = torch.as_tensor(class_pixels, dtype=torch.float64)
    return (counts + 1) / (counts.sum() + len(counts))
