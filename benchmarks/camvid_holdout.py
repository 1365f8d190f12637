"""Cross-sequence validation on CamVid, from the training images only: train
configs/camvid.yaml on every training sequence but one, validate on the one held out.

CamVid's val split is 101 frames of sequence 0016E5, which also gives 204 of the 367
training images, while the test images come from other sequences (0001TP, Seq05VD):
val mIoU rewards fitting the training sequences. A held-out training sequence measures
what test asks for, an unseen sequence, without looking at test. The time budget is the
config's scaled by the share of training images kept (rounded to the minute), so a run
gets about the epochs the full recipe gets. Prints JSON: best val mIoU (one pass, as
checkpoints are chosen) and, with train.fit_class_bias, val mIoU with the recipe's
test-time augmentation before and after the class bias (on the pixels it was fitted on).

    python benchmarks/camvid_holdout.py                                 # 0006R0 held out
    python benchmarks/camvid_holdout.py --set optim.encoder_lr_scale=0.1
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from results import publish, training_record

import semseg
from semseg.config import parse_duration
from semseg.engine.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=REPO.parent / "shared" / "data" / "camvid")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "camvid.yaml")
    parser.add_argument("--sequence", default="0006R0", help="training sequence held out")
    parser.add_argument("--set", nargs="*", default=[], help="extra KEY=VALUE overrides")
    parser.add_argument("--runs", type=Path, default=None, help="run folder parent")
    args = parser.parse_args()
    splits = holdout_splits(args.root, args.sequence)
    kept, held_out = len(splits["train"]), len(splits["val"])
    work = Path(tempfile.mkdtemp(prefix="camvid-holdout-"))
    link_splits(args.root.resolve(), splits, work / "data")
    recipe = semseg.load_config(args.config, args.set)
    full_budget = parse_duration(recipe.train.time_budget or "28m")
    minutes = max(1, round(full_budget * kept / (kept + held_out) / 60))
    config = semseg.load_config(
        args.config,
        [
            *args.set,  # first: the split, run folder and scaled budget are this script's
            f"data.root={work / 'data'}",
            f"train.output_dir={args.runs or work / 'runs'}",
            f"train.time_budget={minutes}m",
        ],
    )
    start = time.perf_counter()
    result = semseg.train(config)
    training = training_record(result.run_dir, time.perf_counter() - start)
    fit = load_checkpoint(result.run_dir / "best.pt").get("class_bias_fit")
    publish(
        "camvid_holdout",
        {
            "held_out_sequence": args.sequence,
            "train_images": kept,
            "val_images": held_out,
            "time_budget": f"{minutes}m",
            "overrides": args.set,
            **training,
            "best_epoch": result.best_epoch,
            "best_val_miou_one_pass": round(100 * result.best_metrics["miou"], 2),
            "val_miou_tta_before_class_bias": fit and round(100 * fit["miou_before"], 2),
            "val_miou_tta_after_class_bias": fit and round(100 * fit["miou_after"], 2),
            "run_dir": str(result.run_dir),
        },
    )


def holdout_splits(root: Path, sequence: str) -> dict[str, list[str]]:
    """root's training frames split in two: train (every sequence but `sequence`) and
    val (the frames of `sequence`)."""
    listing = root / "train.txt"
    if not listing.is_file():
        fail(f"{listing}: not found; give --root, the CamVid folder")
    stems = listing.read_text().split()
    splits = {
        "train": [s for s in stems if not s.startswith(sequence)],
        "val": [s for s in stems if s.startswith(sequence)],
    }
    if not splits["val"]:
        sequences = sorted({s.split("_")[0] for s in stems})
        fail(f"{listing}: no frames of sequence {sequence!r}; hold out one of {sequences}")
    return splits


def link_splits(root: Path, splits: dict[str, list[str]], out: Path) -> None:
    """A CamVid folder at `out` with the given splits of root's training frames, as
    symbolic links (no copies)."""
    out.mkdir(parents=True)
    for split, names in splits.items():
        (out / f"{split}.txt").write_text("".join(f"{name}\n" for name in names))
        for folder, suffix in (("images", ".jpg"), ("labels", ".png")):
            (out / split / folder).mkdir(parents=True)
            for name in names:
                (out / split / folder / f"{name}{suffix}").symlink_to(
                    root / "train" / folder / f"{name}{suffix}"
                )


def fail(message: str) -> None:
    """Bad input: one line on stderr, exit code 2."""
    print(message, file=sys.stderr)
    raise SystemExit(2)


if __name__ == "__main__":
    main()
