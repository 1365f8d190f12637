"""Datasets: format readers by name, and the DataLoaders built from a config."""

from __future__ import annotations

from semseg.config import DataConfig
from semseg.console import track

# Importing the format modules registers them.
from semseg.data import ade20k, camvid, cityscapes, coco, folder, oxford_pet, shapes, voc  # noqa: F401
from semseg.data.base import FileDataset, SegmentationDataset
from semseg.data.loading import SegmentationLoader, make_loader, resolve_num_workers
from semseg.data.registry import (
    FORMATS,
    read_split,
    register_format,
    train_split_name,
    val_split_name,
)
from semseg.data.transforms import eval_preset, train_preset


def train_dataset(data: DataConfig) -> SegmentationDataset:
    """The training split with the training augmentation."""
    dataset = open_split(data, train_split_name(data))
    dataset.transform = train_preset(data, dataset.classes.ignore_index)
    return dataset


def eval_dataset(data: DataConfig, split: str | None = None) -> SegmentationDataset:
    """A split (default: validation) as evaluation sees it: normalised, unaugmented."""
    dataset = open_split(data, split or val_split_name(data))
    dataset.transform = eval_preset(data)
    return dataset


def open_split(data: DataConfig, split: str, keep_broken: bool = False) -> SegmentationDataset:
    """A split's samples with no transform yet (decoded into RAM with `data.cache`; a
    broken sample stops that, unless `keep_broken` leaves it to data.on_error=skip)."""
    dataset = read_split(data, split)
    if data.cache and isinstance(dataset, FileDataset):
        dataset.preload(lambda indices: track(indices, f"caching {split}"), keep_broken)
    return dataset


def input_channels(data: DataConfig) -> int:
    return 1 if data.image_mode == "gray" else 3


__all__ = [
    "FORMATS",
    "SegmentationDataset",
    "SegmentationLoader",
    "eval_dataset",
    "input_channels",
    "make_loader",
    "open_split",
    "read_split",
    "register_format",
    "resolve_num_workers",
    "train_dataset",
]
