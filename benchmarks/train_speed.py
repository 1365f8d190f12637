"""Training throughput of semseg's training step, with and without each speed option.

Runs TrainingStep (the code `semseg train` uses) on random images and labels held in memory,
so the figures measure the step itself, not data loading. Prints JSON.

    python benchmarks/train_speed.py                       # unet_small, 256 px crops
    python benchmarks/train_speed.py --model lraspp --crop 360 --batch 8 --compile
    python benchmarks/train_speed.py --config configs/camvid.yaml --compile
    python benchmarks/train_speed.py --config configs/camvid.yaml --compare \
        "recipe" "dice loss.terms=[{name: ce}, {name: dice, weight: 0.5}]"

With --config the step is the config's: its model options (encoder, frozen stages,
decoder widths), loss and optimiser, at its crop size and batch. --compare times the
default precision only, for each "NAME KEY=VALUE ..." on top of the config, the variants
alternated over --rounds (a shared host's speed drifts between runs).
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from results import publish
from steps import semseg_step
from variants import parse_variant

from semseg import Config, load_config
from semseg.engine.epoch import train_one_epoch
from semseg.engine.precision import cpu_has_fast_bf16
from semseg.engine.setup import build_network
from semseg.models import build_model

NUM_CLASSES = 11


def images_per_second(
    args: argparse.Namespace,
    config: Config | None,
    channels_last: bool,
    amp: bool,
    compiled: bool,
    depthwise_fp32: bool = True,
) -> float:
    torch.manual_seed(0)
    model = build_network(config, NUM_CLASSES) if config else build_model(args.model, NUM_CLASSES)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    step = semseg_step(
        model,
        NUM_CLASSES,
        torch.bfloat16 if amp else None,
        loss=config.loss if config else None,
        optim=config.optim if config else None,
        # The weights' values do not change the step's cost; their presence does.
        class_weights=[1.0] * NUM_CLASSES if config and config.loss.class_weights else None,
        compile=compiled,
        depthwise_fp32=depthwise_fp32,
    )
    images = torch.randn(args.batch, 3, args.crop, args.crop)
    masks = torch.randint(0, NUM_CLASSES, (args.batch, args.crop, args.crop))
    warmup = [(images, masks)] * (3 if compiled else 2)
    train_one_epoch(step, warmup, "warm-up", "")
    start = time.perf_counter()
    train_one_epoch(step, [(images, masks)] * args.steps, "measure", "")
    return args.batch * args.steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="unet_small")
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument("--config", default=None, help="time this config's training step")
    parser.add_argument("--set", nargs="*", default=[], help="KEY=VALUE overrides of --config")
    parser.add_argument("--compare", nargs="*", default=[], help='"NAME KEY=VALUE ..." each')
    parser.add_argument("--rounds", type=int, default=3, help="with --compare")
    args = parser.parse_args()
    config = step_config(args, args.set)
    if config:
        args.model = config.model.name
        args.crop = config.data.crop_size
        args.batch = config.data.batch_size
    if args.compare:
        compare_configs(args)
        return
    variants = {
        "fp32 contiguous": (False, False, False),
        "fp32 channels_last": (True, False, False),
        "bf16 contiguous": (False, True, False),
        "bf16 channels_last, depthwise fp32 (default)": (True, True, False),
        "bf16 channels_last, depthwise bf16": (True, True, False, False),
    }
    if args.compile:
        variants["bf16 channels_last, depthwise fp32 + compile"] = (True, True, True)
    results = {
        name: round(images_per_second(args, config, *flags), 2) for name, flags in variants.items()
    }
    baseline = results["fp32 contiguous"]
    publish(
        "train_speed",
        {
            "model": args.model,
            "config": args.config,
            "overrides": args.set,
            "crop": args.crop,
            "batch": args.batch,
            "steps": args.steps,
            "cpu_count": os.cpu_count(),
            "threads": torch.get_num_threads(),
            "cpu_has_fast_bf16": cpu_has_fast_bf16(),
            "torch": torch.__version__,
            "train_images_per_s": results,
            "speedup_vs_fp32_contiguous": {k: round(v / baseline, 2) for k, v in results.items()},
        },
    )


def step_config(args: argparse.Namespace, overrides: list[str]) -> Config | None:
    if not args.config:
        return None
    # Pretrained weights do not change the step's cost; loading them would.
    return load_config(args.config, [*overrides, "model.pretrained=false"])


def compare_configs(args: argparse.Namespace) -> None:
    """Default-precision images/s of each --compare variant, alternated over rounds."""
    variants = {}
    for spec in args.compare:
        name, overrides = parse_variant(spec)
        variants[name] = [*args.set, *overrides]
    timings: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, overrides in variants.items():
            config = step_config(args, overrides)
            timings[name].append(round(images_per_second(args, config, True, True, False), 2))
    publish(
        "train_speed",
        {
            "config": args.config,
            "crop": args.crop,
            "batch": args.batch,
            "steps": args.steps,
            "threads": torch.get_num_threads(),
            "compare": {
                name: {"overrides": variants[name], "images_per_s": timings[name]}
                for name in variants
            },
        },
    )


if __name__ == "__main__":
    main()
