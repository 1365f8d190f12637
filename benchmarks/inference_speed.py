"""Inference speed of semseg's inference modes on this machine. Prints JSON.

Compares the batched sliding window with running the same tiles one at a time, and
shows what whole-image inference and flip TTA cost, for one model and image size.

    python benchmarks/inference_speed.py                    # lraspp, 720x960 images
    python benchmarks/inference_speed.py --model unet_small --size 360x480 --crop 256
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from results import publish

from semseg.engine.inference import InferenceSettings, predict_logits
from semseg.engine.profile import parse_size
from semseg.models import build_model


def seconds_per_image(
    model, images: torch.Tensor, settings: InferenceSettings, repeats: int
) -> float:
    predict_logits(model, images, settings)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predict_logits(model, images, settings)
        times.append(time.perf_counter() - start)
    return statistics.median(times) / images.shape[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="lraspp")
    parser.add_argument("--size", default="720x960", help="image HEIGHTxWIDTH")
    parser.add_argument("--crop", type=int, default=360, help="tile side")
    parser.add_argument("--overlap", type=float, default=1 / 3, help="tile overlap share")
    parser.add_argument("--tile-batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    height, width = parse_size(args.size)
    torch.manual_seed(0)
    model = build_model(args.model, 11).eval().to(memory_format=torch.channels_last)
    images = torch.randn(1, 3, height, width)
    stride = max(1, round(args.crop * (1 - args.overlap)))
    tiles = {"crop": (args.crop, args.crop), "stride": (stride, stride)}
    modes = {
        "whole image": InferenceSettings(),
        "whole image + flip": InferenceSettings(flip=True),
        "sliding, tiles one by one": InferenceSettings(mode="slide", tile_batch=1, **tiles),
        f"sliding, {args.tile_batch} tiles per batch": InferenceSettings(
            mode="slide", tile_batch=args.tile_batch, **tiles
        ),
    }
    seconds = {name: seconds_per_image(model, images, s, args.repeats) for name, s in modes.items()}
    one_by_one = seconds["sliding, tiles one by one"]
    batched = seconds[f"sliding, {args.tile_batch} tiles per batch"]
    publish(
        "inference_speed",
        {
            "model": args.model,
            "image": [height, width],
            "tile": args.crop,
            "stride": stride,
            "cpu_count": os.cpu_count(),
            "threads": torch.get_num_threads(),
            "images_per_s": {name: round(1 / s, 2) for name, s in seconds.items()},
            "batched_sliding_speedup": round(one_by_one / batched, 2),
        },
    )


if __name__ == "__main__":
    main()
