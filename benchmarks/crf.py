"""What the CRF refinement (eval.crf) does to a trained model: mIoU and boundary F1 on a
split with and without it, and its cost per image. Prints JSON.

    python benchmarks/crf.py runs/camvid/best.pt data.root=../shared/data/camvid
    python benchmarks/crf.py runs/camvid/best.pt data.root=... --split val eval.flip=true
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from results import publish

import semseg

ONE_PASS = ["eval.scales=[1.0]", "eval.flip=false", "eval.boundary_metrics=true"]


def scored(checkpoint: str, split: str, overrides: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        summary = semseg.evaluate(checkpoint, split, overrides, out=Path(folder) / "eval.json")
        seconds = time.perf_counter() - start
    metrics = summary["metrics"]
    return {
        "inference": summary["inference"],
        "miou": round(100 * metrics["miou"], 2),
        "mean_boundary_f1": round(100 * metrics["mean_boundary_f1"], 2),
        "pixel_accuracy": round(100 * metrics["pixel_accuracy"], 2),
        "seconds_per_image": round(seconds / summary["images"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("overrides", nargs="*", help="KEY=VALUE, e.g. data.root=...")
    parser.add_argument("--split", default="val")
    args = parser.parse_args()
    overrides = [*ONE_PASS, *args.overrides]
    without = scored(args.checkpoint, args.split, overrides)
    with_crf = scored(args.checkpoint, args.split, [*overrides, "eval.crf=true"])
    result = {
        "benchmark": "crf",
        "checkpoint": args.checkpoint,
        "split": args.split,
        "without_crf": without,
        "with_crf": with_crf,
        "crf_seconds_per_image": round(
            with_crf["seconds_per_image"] - without["seconds_per_image"], 3
        ),
    }
    publish("crf", result)


if __name__ == "__main__":
    main()
