"""Segmentation metrics from one streaming confusion matrix.

Rows are ground truth, columns are predictions. Pixels whose label is `ignore_index` (or
outside 0..C-1) are not counted. Per-class figures use the NaN rule: a class absent from
both ground truth and prediction has IoU/Dice NaN (nothing to score) and is left out of
every mean; recall is NaN for a class absent from the ground truth, precision NaN for a
class never predicted. Means are macro averages over the classes that are not NaN.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.distributed as dist

#: The NaN rule, as every JSON summary states it.
NAN_RULE = (
    "null (NaN) marks an undefined figure: IoU and Dice of a class absent from both ground "
    "truth and prediction, recall of a class absent from the ground truth, precision of a "
    "class never predicted; undefined figures are left out of the means"
)


class ConfusionMatrix:
    """Streaming C x C pixel confusion matrix; one bincount per update, on any device."""

    def __init__(self, num_classes: int, ignore_index: int = 255, device: Any = "cpu") -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch: `pred` and `target` are integer class maps of the same shape."""
        if pred.shape != target.shape:
            raise ValueError(f"pred shape {tuple(pred.shape)} != target {tuple(target.shape)}")
        n = self.num_classes
        target = target.to(self.matrix.device, torch.int64).reshape(-1)
        pred = pred.to(self.matrix.device, torch.int64).reshape(-1)
        valid = (target != self.ignore_index) & (target >= 0) & (target < n)
        index = target[valid] * n + pred[valid]
        self.matrix += torch.bincount(index, minlength=n * n).reshape(n, n)

    def merge(self, other: ConfusionMatrix) -> ConfusionMatrix:
        """Add another matrix of the same classes (e.g. from another worker or shard)."""
        if other.num_classes != self.num_classes:
            raise ValueError(f"cannot merge {other.num_classes} classes into {self.num_classes}")
        self.matrix += other.matrix.to(self.matrix.device)
        return self

    def all_reduce(self) -> None:
        """Sum the matrix across processes when running distributed."""
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self.matrix)

    def reset(self) -> None:
        self.matrix.zero_()

    def compute(self) -> dict[str, Any]:
        """All metrics as plain Python numbers (per-class ones as lists, NaN where undefined)."""
        cm = self.matrix.double().cpu()
        tp = cm.diag()
        gt = cm.sum(1)  # pixels of each class in the ground truth
        predicted = cm.sum(0)
        total = cm.sum()
        nan = torch.tensor(float("nan"), dtype=torch.float64)

        def ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
            return torch.where(den > 0, num / den.clamp(min=1), nan)

        iou = ratio(tp, gt + predicted - tp)
        dice = ratio(2 * tp, gt + predicted)
        recall = ratio(tp, gt)
        precision = ratio(tp, predicted)
        frequency = gt / total if total > 0 else torch.zeros_like(gt)
        present = gt > 0
        return {
            "pixel_accuracy": _scalar(ratio(tp.sum(), total)),
            "mean_accuracy": nanmean(recall),
            "miou": nanmean(iou),
            "mean_dice": nanmean(dice),
            "fwiou": _scalar((frequency[present] * iou[present]).sum()) if total > 0 else _NAN,
            "iou": iou.tolist(),
            "dice": dice.tolist(),
            # Pixel-level F1 of a class is its Dice coefficient; both names are reported.
            "f1": dice.tolist(),
            "precision": precision.tolist(),
            "recall": recall.tolist(),
            "support": gt.long().tolist(),
            "averaging": "macro over classes that are not NaN; pixel_accuracy and fwiou are micro",
        }


_NAN = float("nan")


def nanmean(values: torch.Tensor) -> float:
    """Mean of the non-NaN entries; NaN when there are none (the NaN rule's means)."""
    finite = values[~values.isnan()]
    return _scalar(finite.mean()) if finite.numel() else _NAN


def _scalar(value: torch.Tensor) -> float:
    return float(value.item())


def per_image_miou(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int = 255
) -> torch.Tensor:
    """mIoU of each image of a batch (NaN rule per image), from one batched bincount."""
    n = num_classes
    count = pred.shape[0]
    target = target.reshape(count, -1).long()
    pred = pred.reshape(count, -1).long().to(target.device)
    valid = (target != ignore_index) & (target >= 0) & (target < n)
    image = torch.arange(count, device=target.device).unsqueeze(1).expand_as(target)
    index = (image * n * n + target * n + pred)[valid]
    matrices = torch.bincount(index, minlength=count * n * n).reshape(count, n, n).double()
    tp = matrices.diagonal(dim1=1, dim2=2)
    union = matrices.sum(1) + matrices.sum(2) - tp
    iou = torch.where(union > 0, tp / union.clamp(min=1), torch.nan)
    present = ~iou.isnan()
    return torch.where(present.any(1), iou.nan_to_num().sum(1) / present.sum(1), torch.nan)


def distribution(values: list[float]) -> dict[str, Any]:
    """Summary of per-image scores (NaN images, with nothing labelled, left out)."""
    finite = np.array([v for v in values if v == v])
    if not finite.size:
        return {"images": 0}
    return {
        "images": int(finite.size),
        "mean": float(finite.mean()),
        "median": float(np.median(finite)),
        "p10": float(np.percentile(finite, 10)),
        "p90": float(np.percentile(finite, 90)),
        "min": float(finite.min()),
    }
