"""The peer row of the CamVid table: segmentation_models_pytorch's Unet on the same
ImageNet EfficientNet-Lite0 encoder, trained as its examples do: a plain PyTorch loop
(fp32, AdamW 1e-3, plain cross-entropy, no schedule) on 288-pixel random-scale crops for a
wall-clock budget, then its last weights scored on the 233 test images at 360x480 (void
ignored), fp32. Data loading and scoring are semseg's, so the rows of the table differ in
model code, loss, precision and loop only. Prints JSON like benchmarks/camvid.py.

    pip install segmentation-models-pytorch
    python benchmarks/camvid_smp.py                     # 25-minute budget
    python benchmarks/camvid_smp.py --budget 5m
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from results import publish
from steps import plain_step
from torch import nn

import semseg
from semseg.config import parse_duration
from semseg.data import eval_dataset, make_loader, train_dataset
from semseg.engine.evaluate import evaluate_model
from semseg.engine.profile import measure_latency
from semseg.models.base import SegmentationModel
from semseg.models.pretrained import efficientnet_lite0_state_dict

REPO = Path(__file__).resolve().parents[1]


class PaddedToStride(SegmentationModel):
    """smp refuses inputs whose sides are not multiples of 32 (CamVid is 360 high);
    semseg's base class pads and crops back."""

    size_divisor = 32

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward_padded(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=REPO.parent / "shared" / "data" / "camvid")
    parser.add_argument("--budget", default="25m", help="training wall-clock time")
    args = parser.parse_args()
    try:
        import segmentation_models_pytorch as smp
    except ImportError:
        raise SystemExit("pip install segmentation-models-pytorch") from None
    config = semseg.load_config(
        REPO / "configs" / "camvid.yaml", [f"data.root={args.root}", "data.crop_size=288"]
    )
    train_set = train_dataset(config.data)
    classes = train_set.classes
    loader = make_loader(train_set, config.data, config.data.batch_size, True)

    torch.manual_seed(0)
    model = smp.Unet("tu-efficientnet_lite0", encoder_weights=None, classes=classes.num_classes)
    missing, _ = model.encoder.model.load_state_dict(efficientnet_lite0_state_dict(), strict=False)
    if missing:
        raise SystemExit(f"EfficientNet-Lite0 weights miss {len(missing)} smp encoder tensors")
    step = plain_step(model, classes.ignore_index)

    budget = parse_duration(args.budget)
    start = time.perf_counter()
    images_seen, epoch = 0, 0
    while time.perf_counter() - start < budget:
        epoch += 1
        model.train()
        for images, masks in loader:
            loss = step(images, masks)
            images_seen += len(images)
            if time.perf_counter() - start >= budget:
                break
        print(f"epoch {epoch}  last loss {loss:.4f}  {images_seen} images", flush=True)
    train_seconds = time.perf_counter() - start

    test_set = eval_dataset(config.data, "test")
    wrapped = PaddedToStride(model)
    result = evaluate_model(
        wrapped,
        make_loader(test_set, config.data, 1, False),
        classes.num_classes,
        classes.ignore_index,
        torch.device("cpu"),
        description="test",
        boundary_tolerance=config.eval.boundary_tolerance,
    )
    metrics = result.confusion.compute()
    boundary = result.boundary.compute()
    publish(
        "camvid_smp",
        {
            "model": "smp.Unet(tu-efficientnet_lite0), plain loop",
            "test_images": len(test_set),
            "miou": round(100 * metrics["miou"], 2),
            "global_accuracy": round(100 * metrics["pixel_accuracy"], 2),
            "class_average_accuracy": round(100 * metrics["mean_accuracy"], 2),
            "per_class_iou": {
                name: round(100 * value, 2)
                for name, value in zip(classes.names, metrics["iou"], strict=True)
            },
            "mean_boundary_f1": round(100 * boundary["mean_boundary_f1"], 2),
            "training_seconds": round(train_seconds, 1),
            "training_images_per_s": round(images_seen / train_seconds, 2),
            "epochs": epoch,
            "inference_images_per_s_360x480": round(
                1 / measure_latency(wrapped, 360, 480, repeats=10), 2
            ),
            "cpu_count": os.cpu_count(),
        },
    )


if __name__ == "__main__":
    main()
