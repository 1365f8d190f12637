"""What the data pipeline costs the CamVid training step on this machine: images/s of
the recipe's step fed by a DataLoader with no worker (augmenting in the training
process) or one worker, against the same step on batches already in memory. Prints
JSON.

    python benchmarks/data_overlap.py                  # data in ../shared/data/camvid
    python benchmarks/data_overlap.py --batches 30 --rounds 3

The step and the loader are the ones `semseg train -c configs/camvid.yaml` builds; the
rounds alternate the variants so that a shared host's drift hits all of them alike.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from results import publish

import semseg
from semseg.data import make_loader
from semseg.engine.epoch import TrainingStep
from semseg.engine.setup import TrainingRun, build_run

REPO = Path(__file__).resolve().parents[1]
SKIPPED = 2  # batches a fresh loader needs to start its worker and fill its queue


def images_per_second(step: TrainingStep, batches: Iterable, count: int) -> float:
    """Training images/s over `count` batches after the first SKIPPED."""
    batches = iter(batches)
    for inputs, masks in itertools.islice(batches, SKIPPED):
        step.backward(inputs, masks)
        step.optimizer_step()
    images = 0
    start = time.perf_counter()
    for inputs, masks in itertools.islice(batches, count):
        step.backward(inputs, masks)
        step.optimizer_step()
        images += len(inputs)
    return images / (time.perf_counter() - start)


def variants(run: TrainingRun, count: int) -> dict[str, Callable[[], float]]:
    """Each way of feeding the step, as a function that times it once."""
    in_memory = list(itertools.islice(run.train_loader, SKIPPED + count))

    def loader(workers: int) -> Callable[[], float]:
        data = run.config.data.model_copy(update={"num_workers": workers})
        batches = make_loader(
            run.train_set, data, data.batch_size, True, run.generator, run.config.train.seed
        )
        return lambda: images_per_second(run.step, batches, count)

    return {
        "batches in memory": lambda: images_per_second(run.step, in_memory, count),
        "loader, no worker (augmenting in the training process)": loader(0),
        "loader, 1 worker": loader(1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=REPO.parent / "shared" / "data" / "camvid")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "camvid.yaml")
    parser.add_argument("--set", nargs="*", default=[], help="extra KEY=VALUE overrides")
    parser.add_argument("--batches", type=int, default=20, help="timed batches per variant")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    config = semseg.load_config(args.config, [f"data.root={args.root}", *args.set])
    run = build_run(config)
    timers = variants(run, args.batches)
    measured: dict[str, list[float]] = {name: [] for name in timers}
    for _ in range(args.rounds):
        for name, timed in timers.items():
            measured[name].append(round(timed(), 2))
    publish(
        "data_overlap",
        {
            "config": str(args.config),
            "overrides": args.set,
            "batch_size": config.data.batch_size,
            "crop_size": config.data.crop_size,
            "cpu_precision": run.cpu_precision,
            "timed_batches": args.batches,
            "train_images_per_s": measured,
            "median": {name: statistics.median(values) for name, values in measured.items()},
        },
    )


if __name__ == "__main__":
    main()
