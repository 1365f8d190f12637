"""Augmentation throughput: images/s one DataLoader worker prepares with each preset.

A 640x800 photo-like image and mask go through the full training pipeline (augmentation
and normalisation) with 512x512 crops, in one process with one thread, as in a worker.
For comparison it times the training step of a model on the same crops: a preset keeps
up when one worker prepares more images per second than the step consumes. Prints JSON.

    python benchmarks/augment_speed.py
    python benchmarks/augment_speed.py --model lraspp --repeats 40
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from results import publish
from steps import semseg_step

from semseg.config import load_config
from semseg.data.augment import PRESETS
from semseg.data.transforms import train_preset


def preset_images_per_second(preset: str | None, repeats: int) -> float:
    overrides = ["data.crop_size=512"] + ([f"data.augment_preset={preset}"] if preset else [])
    pipeline = train_preset(load_config(None, overrides).data, ignore_index=255)
    generator = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (3, 640, 800), dtype=torch.uint8, generator=generator)
    mask = torch.randint(0, 11, (20, 25), dtype=torch.uint8, generator=generator)
    mask = mask.repeat_interleave(32, 0).repeat_interleave(32, 1)  # blocky regions
    torch.manual_seed(0)
    pipeline(image, mask)
    start = time.perf_counter()
    for _ in range(repeats):
        pipeline(image, mask)
    return repeats / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--model", default="unet_small", help="model for the training step")
    args = parser.parse_args()
    torch.set_num_threads(1)  # a DataLoader worker runs one thread
    per_worker = {"default": preset_images_per_second(None, args.repeats)}
    for preset in PRESETS:
        per_worker[preset] = preset_images_per_second(preset, args.repeats)
    torch.set_num_threads(os.cpu_count() or 1)
    step = _training_step_images_per_second(args.model)
    publish(
        "augment_speed",
        {
            "crop": 512,
            "cpu_count": os.cpu_count(),
            "augment_images_per_s_per_worker": {k: round(v, 1) for k, v in per_worker.items()},
            "training_step": {"model": args.model, "images_per_s": round(step, 2)},
            "presets_keeping_up_with_one_worker": [k for k, v in per_worker.items() if v > step],
        },
    )


def _training_step_images_per_second(model_name: str, steps: int = 3, batch: int = 4) -> float:
    """The default training step (bf16 autocast where fast, channels_last) at 512 px."""
    from semseg.engine.epoch import train_one_epoch
    from semseg.engine.precision import resolve_amp
    from semseg.models import build_model

    model = build_model(model_name, 11).to(memory_format=torch.channels_last)
    step = semseg_step(model, 11, resolve_amp("auto", torch.device("cpu")))
    data = [(torch.randn(batch, 3, 512, 512), torch.randint(0, 11, (batch, 512, 512)))]
    train_one_epoch(step, data, "warm-up", "")
    start = time.perf_counter()
    train_one_epoch(step, data * steps, "measure", "")
    return batch * steps / (time.perf_counter() - start)


if __name__ == "__main__":
    main()
