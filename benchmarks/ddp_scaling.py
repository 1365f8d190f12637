"""Overhead of training under torchrun on one machine: the same run as 1 process with N
threads and as N processes (DistributedDataParallel, gloo) with 1 thread each, at the
same global batch. Prints JSON: images/s of each (the median epoch after the first,
as metrics.jsonl records it, summed over the processes) and their ratio.

    python benchmarks/ddp_scaling.py                         # shapes, 2 cores
    python benchmarks/ddp_scaling.py --processes 2 --epochs 4 \\
        -c configs/camvid.yaml data.root=../shared/data/camvid

On a 2-core machine the goal is overhead, not speed-up: N processes should keep at least
0.8x the images/s of one process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from results import publish

SHAPES = ["data.shapes.num_train=480", "data.shapes.size=64", "model.name=unet_small"]


def train(processes: int, threads: int, per_process_batch: int, args: argparse.Namespace) -> dict:
    """One run; its images/s per epoch (all processes together) from metrics.jsonl."""
    with tempfile.TemporaryDirectory() as folder:
        options = [
            *(["-c", args.config] if args.config else []),
            *(args.overrides or SHAPES),
            f"data.batch_size={per_process_batch}",
            f"train.epochs={args.epochs}",
            "train.val_every=1000",  # validation only after the last epoch
            f"train.output_dir={folder}",
            "train.name=run",
        ]
        launcher = [sys.executable, "-m", "semseg"]
        if processes > 1:
            launcher = [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--standalone",
                f"--nproc_per_node={processes}",
                "-m",
                "semseg",
            ]
        environment = os.environ | {"OMP_NUM_THREADS": str(threads)}
        subprocess.run(
            [*launcher, "train", *options], check=True, env=environment, capture_output=True
        )
        log = Path(folder, "run", "metrics.jsonl").read_text().splitlines()
        rates = [json.loads(line)["images_per_s"] for line in log]
    return {
        "processes": processes,
        "threads_per_process": threads,
        "batch_per_process": per_process_batch,
        "images_per_s_by_epoch": [round(rate, 2) for rate in rates],
        "images_per_s": round(statistics.median(rates[1:] or rates), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--global-batch", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each, alternating")
    parser.add_argument("-c", "--config", help="a config file (default: the shapes dataset)")
    parser.add_argument("overrides", nargs="*", help="KEY=VALUE config overrides")
    args = parser.parse_args()
    n = args.processes
    one, many = [], []
    for _ in range(args.repeats):  # alternating, so host noise hits both alike
        one.append(train(1, n, args.global_batch, args))
        many.append(train(n, 1, args.global_batch // n, args))
    one_rate = statistics.median(run["images_per_s"] for run in one)
    many_rate = statistics.median(run["images_per_s"] for run in many)
    result = {
        "benchmark": "ddp_scaling",
        "cpu_count": os.cpu_count(),
        "global_batch": args.global_batch,
        "one_process": one,
        f"{n}_processes": many,
        "ratio": round(many_rate / one_rate, 3),
    }
    publish("ddp_scaling", result)


if __name__ == "__main__":
    main()
