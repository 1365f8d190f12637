"""`semseg data preview`: augmented training samples beside their masks."""

from __future__ import annotations

from pathlib import Path

import torch

from semseg.config import DataConfig
from semseg.console import console
from semseg.data import train_dataset
from semseg.files import check_output_file
from semseg.viz import save_preview_figure


def preview_data(data: DataConfig, out: Path, count: int, seed: int) -> Path:
    """Write a grid of `count` augmented training samples beside their masks: what the
    model will see (`seed` picks the samples and augmentations)."""
    check_output_file(out, "--out")
    dataset = train_dataset(data)
    torch.manual_seed(seed)
    mean, std = (torch.tensor(values).view(-1, 1, 1) for values in data.normalization())
    if data.image_mode == "gray":
        mean, std = mean.mean().view(1, 1, 1), std.mean().view(1, 1, 1)
    samples = []
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(dataset), generator=generator)[:count].tolist()
    for index in order:
        image, mask = dataset[index]
        pixels = ((image * std + mean).clamp(0, 1) * 255).round().byte().permute(1, 2, 0)
        pixels = pixels.squeeze(-1) if pixels.shape[-1] == 1 else pixels
        samples.append((pixels.numpy(), mask.numpy()))
    save_preview_figure(out, samples, dataset.classes)
    console.print(f"wrote {out} ({len(samples)} augmented training samples)")
    return out
