"""Dataset formats by name, and the DataLoaders built from a config."""

from __future__ import annotations

import os
import random
from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader

from semseg.config import DataConfig
from semseg.data.base import InMemoryDataset, SegmentationDataset
from semseg.data.folder import folder_split
from semseg.data.shapes import SHAPES_CLASSES, generate_shapes
from semseg.data.transforms import eval_preset, train_preset
from semseg.errors import SemsegError

SplitReader = Callable[[DataConfig, str], SegmentationDataset]


def shapes_split(data: DataConfig, split: str) -> InMemoryDataset:
    shapes = data.shapes
    count = shapes.num_train if split == data.train_split else shapes.num_val
    code = "train" if split == data.train_split else "val"
    images, masks = generate_shapes(count, shapes.size, shapes.seed, code)
    return InMemoryDataset(images, masks, SHAPES_CLASSES, prefix=f"shapes_{code}")


FORMATS: dict[str, SplitReader] = {"shapes": shapes_split, "folder": folder_split}


def read_split(data: DataConfig, split: str) -> SegmentationDataset:
    """The untransformed samples of one split of the configured dataset."""
    if data.format not in FORMATS:
        raise SemsegError(
            f"config key 'data.format': unknown format {data.format!r}; "
            f"available: {', '.join(sorted(FORMATS))}"
        )
    return FORMATS[data.format](data, split)


def train_dataset(data: DataConfig) -> SegmentationDataset:
    dataset = read_split(data, data.train_split)
    dataset.transform = train_preset(data, dataset.classes.ignore_index)
    return dataset


def eval_dataset(data: DataConfig, split: str | None = None) -> SegmentationDataset:
    dataset = read_split(data, split or data.val_split)
    dataset.transform = eval_preset(data)
    return dataset


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
    workers = resolve_num_workers(data, dataset)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        drop_last=shuffle and len(dataset) > batch_size,
        num_workers=workers,
        # Fresh workers each epoch take their seeds from `generator`, which the trainer
        # reseeds per epoch: that keeps a resumed run identical to an uninterrupted one.
        persistent_workers=False,
        pin_memory=torch.cuda.is_available(),
        collate_fn=pad_collate(dataset.classes.ignore_index),
        generator=generator,
        worker_init_fn=_seed_worker,
    )


def _seed_worker(worker_id: int) -> None:
    # DataLoader seeds torch per worker from its generator; numpy/random follow from it.
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


__all__ = [
    "FORMATS",
    "SegmentationDataset",
    "eval_dataset",
    "make_loader",
    "read_split",
    "train_dataset",
]
