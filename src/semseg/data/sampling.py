"""Sampling: rare-class-aware image sampling, multi-scale batches, and the shards of
each process under torchrun (training: one draw per epoch split across the processes;
evaluation: every sample exactly once, with no padding duplicates).

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
from torch.utils.data import Sampler, WeightedRandomSampler

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
    weights: np.ndarray, generator: torch.Generator, shard: tuple[int, int] | None = None
) -> Sampler[int]:
    """Images drawn with `weights` (rare_class_weights), len(weights) draws an epoch;
    with `shard` (rank, size), this rank's part of the one draw all ranks make."""
    if shard is not None:
        return EpochShards(len(weights), shard, generator, torch.from_numpy(weights))
    return WeightedRandomSampler(
        torch.from_numpy(weights), num_samples=len(weights), replacement=True, generator=generator
    )


class EpochShards(Sampler[int]):
    """Training under torchrun: every rank draws the same epoch order from `generator`
    (seeded alike on every rank each epoch: a permutation, or draws with `weights`),
    cuts it to a multiple of the world size and takes every size-th item from its rank
    on, so the shards are disjoint and equally long (the steps of all ranks match)."""

    def __init__(
        self,
        count: int,
        shard: tuple[int, int],
        generator: torch.Generator,
        weights: torch.Tensor | None = None,
    ) -> None:
        self.count = count
        self.rank, self.size = shard
        self.generator = generator
        self.weights = weights

    def __len__(self) -> int:
        return self.count // self.size

    def __iter__(self):
        if self.weights is None:
            order = torch.randperm(self.count, generator=self.generator)
        else:
            order = torch.multinomial(self.weights, self.count, True, generator=self.generator)
        usable = len(self) * self.size
        # A generator, like torch's samplers: the order is drawn at the first batch, after
        # the DataLoader drew its worker seed from the same generator.
        yield from order[:usable][self.rank :: self.size].tolist()


class EvaluationShard(Sampler[int]):
    """Evaluation under torchrun: samples rank, rank + size, ... of `count`. Together the
    ranks cover every sample exactly once (unlike DistributedSampler, which pads the
    last round with repeats when `count` does not divide by the world size)."""

    def __init__(self, count: int, shard: tuple[int, int]) -> None:
        rank, size = shard
        self.indices = list(range(rank, count, size))

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self):
        return iter(self.indices)


def multiscale(batch: tuple[torch.Tensor, torch.Tensor], factor: float):
    """Resize a whole batch by `factor` (images bilinear, masks nearest)."""
    images, masks = batch
    size = [max(8, round(side * factor)) for side in images.shape[-2:]]
    images = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
    masks = F.interpolate(masks[:, None].float(), size=size, mode="nearest")[:, 0].long()
    return images, masks


def rank_seed(seed: int, rank: int) -> int:
    """The seed of process `rank` under torchrun (rank 0, and a lone process: `seed`)."""
    if rank == 0:
        return seed
    return int(np.random.SeedSequence([seed, rank]).generate_state(2, np.uint64)[0] % 2**63)
