"""The dataset every format reader returns: indexed samples, classes, optional transform."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from semseg.classes import ClassSet

JointTransform = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


class SegmentationDataset(Dataset):
    """Subclasses implement `__len__`, `load(i)` and `sample_name(i)`.

    `load` returns the stored sample: a uint8 3 x H x W image and an H x W uint8 mask of
    class indices (ignore pixels at `classes.ignore_index`). `__getitem__` applies the
    joint transform on top.
    """

    #: Samples already decoded in RAM: worker processes would only add start-up cost.
    in_memory: bool = False

    def __init__(self, classes: ClassSet) -> None:
        self.classes = classes
        self.transform: JointTransform | None = None

    def __len__(self) -> int:
        raise NotImplementedError

    def load(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def sample_name(self, index: int) -> str:
        raise NotImplementedError

    def fingerprint(self) -> str:
        """A short hash identifying the samples, recorded with every run."""
        digest = hashlib.sha256()
        for index in range(len(self)):
            digest.update(self.sample_name(index).encode() + b"\0")
        return digest.hexdigest()[:16]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self.load(index)
        if self.transform is not None:
            return self.transform(image, mask)
        return image, mask.long()


class InMemoryDataset(SegmentationDataset):
    """Samples held as arrays: images N x H x W x 3 uint8, masks N x H x W uint8."""

    in_memory = True

    def __init__(self, images: np.ndarray, masks: np.ndarray, classes: ClassSet, prefix: str):
        super().__init__(classes)
        self.images = torch.from_numpy(images).permute(0, 3, 1, 2)  # N x 3 x H x W view
        self.masks = torch.from_numpy(masks)
        self.prefix = prefix

    def __len__(self) -> int:
        return len(self.images)

    def load(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.masks[index]

    def sample_name(self, index: int) -> str:
        return f"{self.prefix}_{index:05d}"

    def fingerprint(self) -> str:
        digest = hashlib.sha256(self.images.numpy().tobytes())
        digest.update(self.masks.numpy().tobytes())
        return digest.hexdigest()[:16]
