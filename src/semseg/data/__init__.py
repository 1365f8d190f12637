"""Datasets: format readers by name, and the DataLoaders built from a config."""

from __future__ import annotations

import os
import random
from functools import partial

import numpy as np
import torch
from torch.utils.data import DataLoader

from semseg.config import DataConfig
from semseg.console import track

# Importing the format modules registers them.
from semseg.data import ade20k, camvid, cityscapes, coco, folder, oxford_pet, shapes, voc  # noqa: F401
from semseg.data.base import FileDataset, SegmentationDataset
from semseg.data.registry import (
    FORMATS,
    read_split,
    register_format,
    train_split_name,
    val_split_name,
)
from semseg.data.sampling import multiscale, rare_class_sampler
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


def open_split(data: DataConfig, split: str) -> SegmentationDataset:
    """A split's samples with no transform yet (decoded into RAM with `data.cache`)."""
    dataset = read_split(data, split)
    if data.cache and isinstance(dataset, FileDataset):
        dataset.preload(lambda indices: track(indices, f"caching {split}"))
    return dataset


def input_channels(data: DataConfig) -> int:
    return 1 if data.image_mode == "gray" else 3


def resolve_num_workers(data: DataConfig, dataset: SegmentationDataset) -> int:
    if data.num_workers != "auto":
        return int(data.num_workers)
    if dataset.in_memory:
        return 0
    # Leave a core to the training step itself.
    return min(4, max(1, (os.cpu_count() or 1) - 1))


def pad_collate(ignore_index: int):
    """Stack samples of different sizes: images padded with 0, masks with ignore_index."""

    def collate(batch: list[tuple[torch.Tensor, torch.Tensor]]):
        height = max(image.shape[-2] for image, _ in batch)
        width = max(image.shape[-1] for image, _ in batch)
        images = batch[0][0].new_zeros((len(batch), batch[0][0].shape[0], height, width))
        masks = torch.full((len(batch), height, width), ignore_index, dtype=torch.int64)
        for i, (image, mask) in enumerate(batch):
            images[i, :, : image.shape[-2], : image.shape[-1]] = image
            masks[i, : mask.shape[-2], : mask.shape[-1]] = mask
        return images, masks

    return collate


def make_loader(
    dataset: SegmentationDataset,
    data: DataConfig,
    batch_size: int,
    shuffle: bool,
    generator: torch.Generator | None = None,
) -> DataLoader:
    """Training loaders (shuffle=True) honour data.sampler and data.multiscale."""
    workers = resolve_num_workers(data, dataset)
    collate = pad_collate(dataset.classes.ignore_index)
    sampler = None
    if shuffle and data.sampler == "rare_class":
        sampler = rare_class_sampler(
            dataset,
            data.rare_class_power,
            generator or torch.Generator(),
            lambda items: track(items, "image class statistics"),
        )
    if shuffle and data.multiscale is not None:
        collate = partial(_multiscale_collate, collate, tuple(data.multiscale))
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        drop_last=shuffle and len(dataset) > batch_size,
        num_workers=workers,
        # Fresh workers each epoch take their seeds from `generator`, which the trainer
        # reseeds per epoch: that keeps a resumed run identical to an uninterrupted one.
        persistent_workers=False,
        pin_memory=torch.cuda.is_available(),
        collate_fn=collate,
        generator=generator,
        worker_init_fn=_seed_worker,
    )


def _multiscale_collate(collate, scales, batch):
    return multiscale(collate(batch), scales)


def _seed_worker(worker_id: int) -> None:
    # DataLoader seeds torch per worker from its generator; numpy/random follow from it.
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


__all__ = [
    "FORMATS",
    "SegmentationDataset",
    "eval_dataset",
    "input_channels",
    "make_loader",
    "open_split",
    "read_split",
    "register_format",
    "train_dataset",
]
