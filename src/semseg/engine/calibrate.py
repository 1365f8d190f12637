"""Per-class logit offsets fitted on held-out data to maximise mIoU.

Class-weighted losses buy recall on rare classes with precision: median-frequency weights
multiply a CamVid bicyclist pixel's loss by 60x a road pixel's, and the trained network
over-predicts bicyclists accordingly (class-average accuracy far above IoU). A constant
added to one class's logits moves all of that class's decision boundaries at once, so a
vector of C offsets can trade the surplus recall back for IoU without retraining.

The offsets are fitted by coordinate ascent on the mIoU of a random sample of the
validation pixels (confusion-matrix ratios need only a sample, and the sample keeps memory
bounded on large datasets), one class at a time over a grid of shifts that narrows each
round. They are stored in the checkpoint and added inside the model's forward pass (see
`SegmentationModel.set_class_bias`), so eval, predict and export all apply them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from semseg.console import progress_bar
from semseg.engine.checkpoint import (
    checkpoint_classes,
    load_checkpoint,
    model_from_checkpoint,
    save_checkpoint,
)
from semseg.engine.inference import InferenceSettings, predict_logits
from semseg.metrics import miou_of_matrices


def calibrate_checkpoint(
    checkpoint: Path,
    out: Path,
    loader: DataLoader,
    split: str,
    device: torch.device,
    settings: InferenceSettings,
) -> ClassBiasFit:
    """Fit the class bias of `checkpoint`'s model on `loader` (raw scores, whatever bias
    the file had) and write the checkpoint with it to `out` (atomically; may be the same
    path)."""
    payload = load_checkpoint(checkpoint)
    model = model_from_checkpoint(payload, checkpoint).to(device)
    model.set_class_bias(None)
    classes = checkpoint_classes(payload)
    scores, labels = sample_scores(
        model, loader, classes.num_classes, classes.ignore_index, device, settings
    )
    fit = replace(fit_class_bias(scores, labels, classes.num_classes), split=split)
    entries = {"class_bias": fit.bias.tolist(), "class_bias_fit": fit.record(classes.names)}
    save_checkpoint(out, payload | entries)
    return fit


# Scores kept for fitting, in floats: 11 classes -> 2.7 M pixels (about 110 MB).
MAX_SCORES = 30_000_000


def sample_scores(
    model: nn.Module,
    loader: DataLoader,
    num_classes: int,
    ignore_index: int,
    device: torch.device,
    settings: InferenceSettings,
    max_scores: int = MAX_SCORES,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Model scores (P x C, float32) and labels (P) of a uniform random sample of the
    loader's labelled pixels: every pixel is kept with the same probability, chosen so
    that the sample holds about `max_scores / C` pixels."""
    generator = torch.Generator().manual_seed(seed)
    total_pixels = len(loader.dataset) * _pixels_per_image(loader)
    keep = min(1.0, max_scores / num_classes / max(1, total_pixels))
    scores, labels = [], []
    model.eval()
    with progress_bar() as progress:
        task = progress.add_task("calibration scores", total=len(loader), info="")
        for images, masks in loader:
            logits = predict_logits(model, images.to(device), settings).float().cpu()
            if logits.shape[-2:] != masks.shape[-2:]:
                logits = nn.functional.interpolate(
                    logits, size=masks.shape[-2:], mode="bilinear", align_corners=False
                )
            chosen = (masks != ignore_index) & (masks < num_classes)
            chosen &= torch.rand(masks.shape, generator=generator) < keep
            scores.append(logits.permute(0, 2, 3, 1)[chosen])
            labels.append(masks[chosen].long())
            progress.advance(task)
    return torch.cat(scores), torch.cat(labels)


def _pixels_per_image(loader: DataLoader) -> int:
    """Pixels of the first sample's label: the sampling rate's yardstick."""
    _, mask = loader.dataset[0]
    return mask.numel()


@dataclass(frozen=True)
class ClassBiasFit:
    bias: torch.Tensor  # C offsets, mean 0
    miou_before: float  # on the fitting sample, so `miou_after` is optimistic
    miou_after: float
    pixels: int  # in the fitting sample
    split: str | None = None

    def record(self, names: tuple[str, ...] | list[str]) -> dict[str, Any]:
        """Plain data for checkpoints and summaries."""
        return {
            "offsets": dict(zip(names, self.bias.tolist(), strict=True)),
            "split": self.split,
            "pixels": self.pixels,
            "miou_before": self.miou_before,
            "miou_after": self.miou_after,
            "note": "mIoU on the pixels the offsets were fitted on (optimistic after fitting)",
        }

    def describe(self, names: tuple[str, ...] | list[str]) -> str:
        offsets = ", ".join(f"{n} {b:+.2f}" for n, b in zip(names, self.bias.tolist(), strict=True))
        return (
            f"class bias fitted on {self.split}: mIoU {100 * self.miou_before:.1f} -> "
            f"{100 * self.miou_after:.1f} on the pixels it was fitted on; offsets {offsets}"
        )


def fit_class_bias(
    scores: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    rounds: int = 3,
    span: float = 4.0,
    steps: int = 81,
) -> ClassBiasFit:
    """Offsets b (C) maximising the mIoU of argmax(scores + b) on the sample, by coordinate
    ascent: each round tries, for every class in turn, `steps` shifts in [-span, span]
    (halved every round) and keeps the best."""
    bias = torch.zeros(num_classes)
    before = best = float(_shift_mious(scores, labels, bias, 0, torch.zeros(1))[0])
    for round_index in range(rounds):
        shifts = torch.linspace(-span, span, steps) / 2**round_index
        for cls in range(num_classes):
            mious = _shift_mious(scores, labels, bias, cls, shifts)
            choice = int(mious.argmax())
            if mious[choice] > best + 1e-9:
                best = float(mious[choice])
                bias[cls] += shifts[choice]
    # Only differences between classes matter to the argmax (and the softmax).
    return ClassBiasFit(bias - bias.mean(), before, best, len(labels))


def _shift_mious(
    scores: torch.Tensor, labels: torch.Tensor, bias: torch.Tensor, cls: int, shifts: torch.Tensor
) -> torch.Tensor:
    """mIoU of argmax(scores + bias + shift on class `cls`) for every (ascending) shift,
    from one pass over the pixels instead of one per shift.

    A pixel goes to `cls` exactly when its margin (cls's biased score minus the best other
    class's) plus the shift is positive, so from the first shift that beats its margin on:
    count pixels by (that first shift, label, best other class), and cumulative sums over
    the shifts give every shift's confusion matrix."""
    n, count = scores.shape[1], len(shifts)
    shifted = scores + bias
    own = shifted[:, cls].clone()
    shifted[:, cls] = -torch.inf
    other_score, other_class = shifted.max(1)
    first = torch.searchsorted(shifts, other_score - own, right=True)  # 0..count
    index = (first * n + labels) * n + other_class
    counts = torch.bincount(index, minlength=(count + 1) * n * n).reshape(count + 1, n, n)
    # Shift j: pixels with first <= j predict cls; the others keep their best other class.
    to_cls = counts.sum(2).cumsum(0)[:count]  # (count, n) labels of pixels predicting cls
    kept = counts.flip(0).cumsum(0).flip(0)[1:]  # pixels with first > j
    matrices = kept.clone()
    matrices[:, :, cls] += to_cls
    return miou_of_matrices(matrices)
