"""CamVid benchmark: train configs/camvid.yaml within its time budget on this machine,
then evaluate on all 233 test images at the full 360x480 labels (void ignored). Prints
JSON: mIoU, global accuracy, class-average accuracy, per-class IoU, boundary F1,
training seconds and images/s, inference images/s (as the test images were scored, with
the recipe's test-time augmentation, and of one pass); with a class bias fitted on val
(train.fit_class_bias), also the test figures of the same weights without it.

    python benchmarks/camvid.py                          # data in ../shared/data/camvid
    python benchmarks/camvid.py --root /data/camvid --set train.time_budget=10m
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
from results import publish, training_record
from speed import images_per_second, reference_images_per_second

import semseg
from semseg.data import eval_dataset, make_loader
from semseg.engine.evaluate import evaluate_model
from semseg.engine.inference import predict_logits

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=REPO.parent / "shared" / "data" / "camvid")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "camvid.yaml")
    parser.add_argument("--set", nargs="*", default=[], help="extra KEY=VALUE overrides")
    parser.add_argument("--runs", type=Path, default=None, help="run folder parent")
    args = parser.parse_args()
    runs = args.runs or Path(tempfile.mkdtemp(prefix="camvid-"))
    config = semseg.load_config(
        args.config, [f"data.root={args.root}", f"train.output_dir={runs}", *args.set]
    )
    start = time.perf_counter()
    result = semseg.train(config)
    train_seconds = time.perf_counter() - start
    training = training_record(result.run_dir, train_seconds)
    # Model selection on val only: best.pt is the best validation checkpoint.
    start = time.perf_counter()
    summary = semseg.evaluate(
        result.run_dir / "best.pt",
        split="test",
        overrides=["eval.boundary_metrics=true", "eval.batch_size=1"],
        out=result.run_dir / "test.json",
    )
    eval_seconds = time.perf_counter() - start
    metrics = summary["metrics"]
    predictor = semseg.load(result.run_dir / "best.pt")
    without_bias = None
    if predictor.model.class_bias is not None:  # the same weights, offsets removed
        predictor.model.set_class_bias(None)
        test_loader = make_loader(eval_dataset(config.data, "test"), config.data, 1, False)
        classes = predictor.classes
        raw = evaluate_model(
            predictor.model,
            test_loader,
            classes.num_classes,
            classes.ignore_index,
            predictor.device,
            settings=predictor.inference,
        ).confusion.compute()
        without_bias = {
            "miou": round(100 * raw["miou"], 2),
            "global_accuracy": round(100 * raw["pixel_accuracy"], 2),
            "class_average_accuracy": round(100 * raw["mean_accuracy"], 2),
        }
    # Through the path `semseg predict` takes: as the test images were scored (with the
    # recipe's test-time augmentation), and one pass.
    image = torch.randn(1, 3, 360, 480)
    as_scored = images_per_second(
        lambda: predict_logits(predictor.model, image, predictor.inference), repeats=5
    )
    one_pass = predictor.inference.single_pass()
    single_pass = images_per_second(
        lambda: predict_logits(predictor.model, image, one_pass), repeats=10
    )
    reference = reference_images_per_second()  # the real-time bar, in the same run
    publish(
        "camvid",
        {
            "test_images": summary["images"],
            "miou": round(100 * metrics["miou"], 2),
            "global_accuracy": round(100 * metrics["pixel_accuracy"], 2),
            "class_average_accuracy": round(100 * metrics["mean_accuracy"], 2),
            "per_class_iou": {
                n: round(100 * v, 2)
                for n, v in zip(summary["class_names"], metrics["iou"], strict=True)
            },
            "mean_boundary_f1": round(100 * metrics["mean_boundary_f1"], 2),
            "class_bias": summary["class_bias"],
            "test_without_class_bias": without_bias,
            **training,
            "best_epoch": result.best_epoch,
            "best_val_miou": round(100 * result.best_metrics["miou"], 2),
            "inference": predictor.inference.describe(),
            "inference_images_per_s_360x480": as_scored,
            "inference_images_per_s_360x480_one_pass": single_pass,
            "torchvision_lraspp_fp32_images_per_s_360x480": reference,
            "one_pass_speed_vs_torchvision_lraspp": round(single_pass / reference, 2),
            "test_eval_seconds_with_boundary_metrics": round(eval_seconds, 1),
            "cpu_count": os.cpu_count(),
            "run_dir": str(result.run_dir),
        },
    )


if __name__ == "__main__":
    main()
