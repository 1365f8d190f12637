"""DataLoaders over segmentation datasets.

Samples of different sizes are padded into batches (images with 0, masks with
ignore_index). A sample that cannot be read raises its one-line error in the process
that iterates the loader, also when it was read in a worker process: the worker returns
the error as a value and the loader raises it (PyTorch would wrap it in a RuntimeError
with the worker's traceback). With `data.on_error=skip` a training loader replaces a
broken sample by another one, chosen from the seed and epoch, records it in `skipped`,
and stops once more than `data.max_skipped` of the samples turned out broken.
"""

from __future__ import annotations

import os
import random
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from semseg.config import DataConfig
from semseg.console import track
from semseg.data.base import SegmentationDataset
from semseg.data.sampling import (
    EpochShards,
    EvaluationShard,
    image_class_pixels,
    multiscale,
    rank_seed,
    rare_class_sampler,
    rare_class_weights,
)
from semseg.errors import DataProblem, SemsegError

# Samples tried in place of a broken one before a training loader gives up.
REPLACEMENT_TRIES = 100


@dataclass(frozen=True)
class Skipped:
    """A training sample that could not be read and was replaced."""

    path: str
    kind: str
    detail: str


@dataclass(frozen=True)
class _Failure:
    """A sample's error, carried out of a worker process as a value, with the traceback
    where it was raised (shown by `--debug`)."""

    error: SemsegError
    trace: str = ""


class GuardedSamples(Dataset):
    """The dataset as a loader reads it: items are (image, mask, skipped) or a _Failure.
    With `skip`, a sample raising DataProblem is replaced by the first readable one from
    an index drawn from (seed, epoch, index) on; `epoch` is set by the training loop
    before each epoch."""

    def __init__(self, dataset: SegmentationDataset, skip: bool = False, seed: int = 0) -> None:
        self.dataset = dataset
        self.skip = skip
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, tuple] | _Failure:
        try:
            image, mask = self.dataset[index]
        except DataProblem as problem:
            if self.skip:
                return self._replacement(index, problem)
            return _Failure(problem, traceback.format_exc())
        except SemsegError as error:
            return _Failure(error, traceback.format_exc())
        return image, mask, ()

    def _replacement(self, index: int, problem: DataProblem):
        skipped = [Skipped(problem.path, problem.kind, problem.detail)]
        count = len(self.dataset)
        start = int(np.random.default_rng([self.seed, self.epoch, index]).integers(count))
        for offset in range(min(REPLACEMENT_TRIES, count)):
            try:
                image, mask = self.dataset[(start + offset) % count]
            except DataProblem as again:
                skipped.append(Skipped(again.path, again.kind, again.detail))
                continue
            return image, mask, tuple(skipped)
        return _Failure(
            SemsegError(
                f"{problem.path}: {problem.detail}; and the {len(skipped) - 1} samples tried "
                "in its place were broken too; run 'semseg data check' and fix the dataset"
            )
        )


class SegmentationLoader(DataLoader):
    """Yields (images, masks). Raises a sample's error here, whichever process read it,
    with `hint` appended to data problems; collects replaced samples in `skipped` and
    stops when more than `max_broken` distinct files were broken. With `scales`, each
    batch is resized by a factor drawn from (seed, epoch): here, not in a worker, so that
    under torchrun every rank draws the same factor at the same step."""

    def __init__(
        self,
        *args: Any,
        hint: str = "",
        max_broken: int | None = None,
        scales: tuple[float, float] | None = None,
        seed: int = 0,
        **kw: Any,
    ):
        super().__init__(*args, **kw)
        self.hint = hint
        self.max_broken = max_broken
        self.scales = scales
        self.seed = seed
        self.skipped: list[Skipped] = []  # in the order met, repeats included
        self.broken_files: set[str] = set()  # over the loader's life (a whole run)
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Before each training epoch: the replacements of broken samples and the batch
        scales draw from (seed, epoch). (The order comes from the loader's generator,
        which the training loop reseeds.)"""
        self.dataset.epoch = epoch
        self._scale_draws = np.random.default_rng([self.seed, epoch, 1])

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for batch in super().__iter__():
            if isinstance(batch, _Failure):
                raise self._raised(batch)
            images, masks, skipped = batch
            if skipped:
                self._record(skipped)
            if self.scales is not None:
                images, masks = multiscale((images, masks), self._scale_draws.uniform(*self.scales))
            yield images, masks

    @property
    def samples(self) -> SegmentationDataset:
        """The dataset the loader reads (`dataset` is its guarded view)."""
        return self.dataset.dataset

    def take_skipped(self) -> list[Skipped]:
        """The replaced samples met since the last call."""
        taken, self.skipped = self.skipped, []
        return taken

    def _record(self, skipped: tuple[Skipped, ...]) -> None:
        self.skipped.extend(skipped)
        self.broken_files.update(item.path for item in skipped)
        if self.max_broken is not None and len(self.broken_files) > self.max_broken:
            raise SemsegError(
                f"{len(self.broken_files)} of {len(self.dataset)} training samples are broken, "
                f"more than data.max_skipped allows ({self.max_broken}); the run folder's "
                "skipped.txt lists them; run 'semseg data check' and fix the dataset"
            )

    def _raised(self, failure: _Failure) -> SemsegError:
        """The failure's error, with the loader's hint for data problems and the original
        traceback as a note (Python 3.11+ prints notes under a traceback: `--debug`)."""
        error = failure.error
        if self.hint and isinstance(error, DataProblem):
            error = DataProblem(error.path, error.kind, f"{error.detail}; {self.hint}")
        if failure.trace and hasattr(error, "add_note"):
            error.add_note(f"raised while loading the sample:\n{failure.trace}")
        return error


def resolve_num_workers(data: DataConfig, dataset: SegmentationDataset) -> int:
    if data.num_workers != "auto":
        return int(data.num_workers)
    if dataset.in_memory:
        return 0
    # Leave a core to the training step itself.
    return min(4, max(1, (os.cpu_count() or 1) - 1))


def pad_collate(ignore_index: int):
    """Stack (image, mask, skipped) items of different sizes: images padded with 0, masks
    with ignore_index; a failed item makes the whole batch that failure."""

    def collate(batch: list):
        failure = next((item for item in batch if isinstance(item, _Failure)), None)
        if failure is not None:
            return failure
        height = max(image.shape[-2] for image, _, _ in batch)
        width = max(image.shape[-1] for image, _, _ in batch)
        images = batch[0][0].new_zeros((len(batch), batch[0][0].shape[0], height, width))
        masks = torch.full((len(batch), height, width), ignore_index, dtype=torch.int64)
        for i, (image, mask, _) in enumerate(batch):
            images[i, :, : image.shape[-2], : image.shape[-1]] = image
            masks[i, : mask.shape[-2], : mask.shape[-1]] = mask
        return images, masks, tuple(item for _, _, skipped in batch for item in skipped)

    return collate


# What a loader appends to a broken sample's message.
TRAINING_HINT = (
    "run 'semseg data check' to list every problem, or set data.on_error=skip to train "
    "without the broken samples"
)
EVALUATION_HINT = (
    "evaluation never skips samples (the metrics would change): fix or remove the file "
    "('semseg data check' lists every problem)"
)


def make_loader(
    dataset: SegmentationDataset,
    data: DataConfig,
    batch_size: int,
    shuffle: bool,
    generator: torch.Generator | None = None,
    seed: int = 0,
    shard: tuple[int, int] | None = None,
    class_table: np.ndarray | None = None,
) -> SegmentationLoader:
    """Training loaders (shuffle=True) honour data.sampler, data.multiscale and
    data.on_error (`seed` drives the replacements of skipped samples and the batch
    scales); evaluation loaders keep the order and never skip. `shard` (rank, size):
    this process's share under torchrun. `class_table`: image_class_pixels of the
    dataset for data.sampler=rare_class, when the caller has it (counted otherwise)."""
    skip = shuffle and data.on_error == "skip"
    generator = generator or torch.Generator()
    sampler = None
    if shuffle and data.sampler == "rare_class":
        if class_table is None:
            class_table = image_class_pixels(
                dataset, lambda items: track(items, "image class statistics"), skip
            )
        weights = rare_class_weights(class_table, data.rare_class_power)
        sampler = rare_class_sampler(weights, generator, shard)
    elif shard is not None and shuffle:
        sampler = EpochShards(len(dataset), shard, generator)
    elif shard is not None:
        sampler = EvaluationShard(len(dataset), shard)
    per_process = len(sampler) if sampler is not None else len(dataset)
    rank = shard[0] if shard else 0
    return SegmentationLoader(
        GuardedSamples(dataset, skip=skip, seed=seed),
        hint=TRAINING_HINT if shuffle else EVALUATION_HINT,
        max_broken=int(data.max_skipped * len(dataset)) if skip else None,
        scales=tuple(data.multiscale) if shuffle and data.multiscale else None,
        seed=seed,
        batch_size=batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        drop_last=shuffle and per_process > batch_size,
        num_workers=resolve_num_workers(data, dataset),
        # Fresh workers each epoch take their seeds from `generator`, which the trainer
        # reseeds per epoch: that keeps a resumed run identical to an uninterrupted one.
        persistent_workers=False,
        pin_memory=torch.cuda.is_available(),
        collate_fn=pad_collate(dataset.classes.ignore_index),
        generator=generator,
        worker_init_fn=partial(_seed_worker, rank),
    )


def _seed_worker(rank: int, worker_id: int) -> None:
    # DataLoader seeds torch per worker from its generator; numpy/random follow from it.
    # Under torchrun the generator is seeded alike on every rank (the shards come from
    # it), so other ranks mix their rank in: augmentations differ across ranks.
    if rank:
        torch.manual_seed(rank_seed(torch.initial_seed(), rank))
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
