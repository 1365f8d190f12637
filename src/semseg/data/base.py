"""The datasets every format reader returns: indexed samples, classes, optional transform."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from semseg.classes import ClassSet
from semseg.data.io import DEFAULT_MAX_PIXELS, read_image, read_mask
from semseg.data.labels import LabelDecoder
from semseg.errors import DataProblem

JointTransform = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


class SegmentationDataset(Dataset):
    """Subclasses implement `__len__`, `load(i)` and `sample_name(i)`.

    `load` returns the stored sample: a uint8 C x H x W image and an H x W uint8 mask of
    class indices (ignore pixels at `classes.ignore_index`). `__getitem__` applies the
    joint transform on top. `problems` lists what the reader found wrong while listing
    the files (missing masks, an empty split); `data check` reports them, training stops.
    """

    #: Samples already decoded in RAM: worker processes would only add start-up cost.
    in_memory: bool = False
    #: Files declaring more pixels are refused before decoding (data.max_pixels).
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __init__(self, classes: ClassSet) -> None:
        self.classes = classes
        self.transform: JointTransform | None = None
        self.problems: list[DataProblem] = []

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
    """Samples held as arrays: images N x H x W x C uint8, masks N x H x W uint8."""

    in_memory = True

    def __init__(self, images: np.ndarray, masks: np.ndarray, classes: ClassSet, prefix: str):
        super().__init__(classes)
        self.images = torch.from_numpy(images).permute(0, 3, 1, 2)  # N x C x H x W view
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


@dataclass(frozen=True)
class Sample:
    name: str
    image: Path
    mask: Path


class FileDataset(SegmentationDataset):
    """Image and mask files, decoded lazily (in DataLoader workers) or all at once into RAM
    with `cache=True`, which suits small datasets: no decoding after the first pass."""

    def __init__(
        self,
        samples: Iterable[Sample],
        classes: ClassSet,
        decoder: LabelDecoder,
        gray: bool = False,
        problems: Iterable[DataProblem] = (),
    ) -> None:
        super().__init__(classes)
        self.problems.extend(problems)
        self.samples = list(samples)
        self.decoder = decoder
        self.gray = gray
        self._cache: list[tuple[torch.Tensor, torch.Tensor] | DataProblem] | None = None

    def __len__(self) -> int:
        return len(self.samples)

    def sample_name(self, index: int) -> str:
        return self.samples[index].name

    def fingerprint(self) -> str:
        # Names and byte sizes: cheap for large datasets, and changes when files change.
        digest = hashlib.sha256()
        for sample in self.samples:
            for path in (sample.image, sample.mask):
                size = path.stat().st_size if path.exists() else -1
                digest.update(f"{path.name}:{size}\0".encode())
        return digest.hexdigest()[:16]

    def load(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self._cache is not None:
            cached = self._cache[index]
            if isinstance(cached, DataProblem):
                raise cached
            return cached
        sample = self.samples[index]
        image = read_image(sample.image, gray=self.gray, max_pixels=self.max_pixels)
        labels = self.read_labels(index)
        if labels.shape != tuple(image.shape[1:]):
            raise DataProblem(
                sample.mask,
                "size mismatch",
                f"mask is {labels.shape[1]}x{labels.shape[0]} but its image {sample.image.name}"
                f" is {image.shape[2]}x{image.shape[1]} (WxH); masks must have the image's size",
            )
        return image, torch.from_numpy(labels)

    def read_labels(self, index: int) -> np.ndarray:
        """The decoded H x W uint8 label mask of sample `index`."""
        path = self.samples[index].mask
        mask, mode = read_mask(path, self.max_pixels)
        return self.decoder.decode(mask, mode, path)

    def preload(
        self, progress: Callable[[Iterable[int]], Iterable[int]] = iter, keep_broken: bool = False
    ) -> None:
        """Decode every sample now and keep it in RAM (the `data.cache` option). A broken
        sample stops here, or with `keep_broken` raises its problem when loaded (so that
        data.on_error=skip can replace it)."""
        self._cache = [self._load_or_problem(i, keep_broken) for i in progress(range(len(self)))]
        self.in_memory = True

    def _load_or_problem(self, index: int, keep_broken: bool):
        try:
            return self.load(index)
        except DataProblem as problem:
            if not keep_broken:
                raise
            return problem
