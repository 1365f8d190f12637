"""Recipe trials for configs/camvid.yaml, scored on CamVid *val* (never test).

Each trial is configs/camvid.yaml plus overrides, trained for a fixed number of epochs
instead of the time budget, so that a faster machine (a GPU) can stand in for the 2-core
CPU: give each trial the epochs the CPU reaches in the recipe's budget at that trial's
training speed (`semseg train` reports images/s; the README lists the figures used).

    python benchmarks/camvid_trials.py --parallel 4 --root /data/camvid \\
        "base train.epochs=21" "light train.epochs=30 model.decoder_widths=[128,64,32,16]"

With `--hold-out SEQUENCE` the trials validate on that training sequence instead, trained
on the other training sequences (camvid_holdout.py's split: unseen-sequence validation
without looking at test).

Prints one JSON line per trial as it ends: the overrides, epochs, final and best val
mIoU (one pass), the best epoch's per-class IoU and, with the recipe's class bias, best.pt's
val mIoU with the test-time augmentation before and after the bias.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from camvid_holdout import holdout_splits, link_splits
from variants import parse_variant

from semseg.engine.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[1]


def run_trial(spec: str, args: argparse.Namespace, runs: Path) -> dict:
    name, overrides = parse_variant(spec)
    command = [
        sys.executable,
        "-m",
        "semseg",
        "train",
        "-c",
        str(args.config),
        f"data.root={args.root}",
        f"train.output_dir={runs}",
        f"train.name={name}",
        "train.time_budget=null",
        f"train.val_every={args.val_every}",
        f"data.num_workers={args.workers}",
        *overrides,
    ]
    log = runs / f"{name}.log"
    with log.open("w") as stream:
        code = subprocess.run(command, stdout=stream, stderr=subprocess.STDOUT).returncode
    if code != 0:
        return {"trial": name, "overrides": overrides, "error": log.read_text()[-2000:]}
    history = [json.loads(line) for line in (runs / name / "metrics.jsonl").open()]
    scored = [record for record in history if "val_miou" in record]
    summary = json.loads((runs / name / "summary.json").read_text())
    fit = load_checkpoint(runs / name / "best.pt").get("class_bias_fit")
    return {
        "trial": name,
        "overrides": overrides,
        "epochs": len(history),
        "final_val_miou": round(100 * scored[-1]["val_miou"], 2),
        "best_val_miou": round(100 * max(r["val_miou"] for r in scored), 2),
        "val_miou_curve": [round(100 * r["val_miou"], 1) for r in scored],
        "best_per_class_iou": {
            n: None if v is None else round(100 * v, 1)
            for n, v in zip(summary["class_names"], summary["best"]["iou"], strict=True)
        },
        "train_images_per_s": round(history[-1]["images_per_s"], 1),
        # with train.fit_class_bias: best.pt's val mIoU with eval's test-time augmentation
        "val_miou_tta_before_class_bias": fit and round(100 * fit["miou_before"], 2),
        "val_miou_tta_after_class_bias": fit and round(100 * fit["miou_after"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("trials", nargs="+", help='"NAME KEY=VALUE ..." per trial')
    parser.add_argument("--root", type=Path, default=REPO.parent / "shared" / "data" / "camvid")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "camvid.yaml")
    parser.add_argument("--parallel", type=int, default=1, help="trials run at once")
    parser.add_argument("--workers", type=int, default=1, help="data workers per trial")
    parser.add_argument("--val-every", type=int, default=5)
    parser.add_argument("--runs", type=Path, default=None, help="run folder parent")
    parser.add_argument("--hold-out", metavar="SEQUENCE", help="validate on this training sequence")
    args = parser.parse_args()
    # Checked before any folder is made: a bad --root or --hold-out leaves nothing behind.
    splits = holdout_splits(args.root, args.hold_out) if args.hold_out else None
    runs = args.runs or Path(tempfile.mkdtemp(prefix="camvid-trials-"))
    runs.mkdir(parents=True, exist_ok=True)
    if splits:
        linked = runs / f"camvid-without-{args.hold_out}"
        link_splits(args.root.resolve(), splits, linked)
        args.root = linked
    with ThreadPoolExecutor(args.parallel) as pool:
        pending = [pool.submit(run_trial, spec, args, runs) for spec in args.trials]
        for done in as_completed(pending):  # one line per trial as soon as it ends
            print(json.dumps(done.result()), flush=True)


if __name__ == "__main__":
    main()
