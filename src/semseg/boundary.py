"""Boundary metrics, accumulated batch by batch on the model's device.

Boundary F1 (BF, Csurka et al. 2013, as reported by SegNet): for each image and class,
the boundary pixels of the predicted and true class regions are matched within a
tolerance of `tolerance` x the image diagonal (chessboard distance, which keeps the
computation to two max-pools per map); precision and recall of the matches give
F1. A class counts in an image when it is in the ground truth or the prediction; its BF
is averaged over those images, and mean BF averages the classes (macro).

Boundary IoU (Cheng et al. 2021): the IoU of the bands within d = `band` x diagonal
inside each region's contour, with intersections and unions summed over the dataset
(micro over pixels, then macro over classes).

Ignore pixels belong to no region: predictions there are dropped, so an ignore band is
a region edge for truth and prediction alike.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F

from semseg.metrics import nanmean


def _box_any(x: torch.Tensor, radius: int, dim: int) -> torch.Tensor:
    """Whether any element within `radius` along `dim` is set: a sliding-window sum from
    one cumulative sum, so its cost does not grow with the radius."""
    size = x.shape[dim]
    padded = F.pad(x, [0, 0] * (x.dim() - 1 - dim) + [radius + 1, radius])
    total = padded.cumsum(dim)
    upper = total.narrow(dim, 2 * radius + 1, size)
    lower = total.narrow(dim, 0, size)
    return (upper - lower) > 0


def dilate(masks: torch.Tensor, radius: int) -> torch.Tensor:
    """Binary dilation of N x K x H x W masks by a (2r+1)-square, i.e. every pixel within
    chessboard distance r (outside the image counts as unset)."""
    if radius <= 0:
        return masks
    rows = _box_any(masks.to(torch.int32), radius, dim=2)
    return _box_any(rows.to(torch.int32), radius, dim=3)


def label_edges(labels: torch.Tensor) -> torch.Tensor:
    """N x H x W: pixels with an 8-neighbour of another label (outside the image counts as
    the same label). Computed once on the label map, for every class at the same time."""
    padded = F.pad(labels[:, None].float(), (1, 1, 1, 1), mode="replicate")[:, 0]
    height, width = labels.shape[-2:]
    edge = torch.zeros(labels.shape, dtype=torch.bool, device=labels.device)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            if (dy, dx) != (1, 1):
                edge |= padded[:, dy : dy + height, dx : dx + width] != labels
    return edge


def inner_band(masks: torch.Tensor, width: int) -> torch.Tensor:
    """Pixels of each region within `width` of its contour (image edges are no contour)."""
    # Max-pool padding never wins, so the image border does not count as a contour.
    return masks & dilate(~masks, width)


_COUNTS = ("f1_sum", "f1_count", "band_intersection", "band_union")


class BoundaryMetrics:
    def __init__(
        self,
        num_classes: int,
        ignore_index: int = 255,
        tolerance: float = 0.0075,
        band: float = 0.02,
        device: Any = "cpu",
    ) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.tolerance = tolerance
        self.band = band
        zeros = torch.zeros(num_classes, dtype=torch.float64, device=device)
        self.f1_sum, self.f1_count = zeros.clone(), zeros.clone()
        self.band_intersection, self.band_union = zeros.clone(), zeros.clone()

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch of N x H x W predicted and true label maps."""
        target = target.to(self.f1_sum.device)
        pred = pred.to(self.f1_sum.device)
        valid = (target != self.ignore_index) & (target >= 0) & (target < self.num_classes)
        # Only classes that occur in this batch cost anything (ADE20K: ~10 of 150).
        present = torch.unique(torch.cat([target[valid], pred[valid]]))
        truth = target.unsqueeze(1) == present.view(1, -1, 1, 1)
        guess = (pred.unsqueeze(1) == present.view(1, -1, 1, 1)) & valid.unsqueeze(1)
        diagonal = math.hypot(*target.shape[-2:])
        tolerance = max(1, math.ceil(self.tolerance * diagonal))
        # Contour pixels (same as inner_band(regions, 1)), from the label maps directly.
        truth_edge = truth & label_edges(target).unsqueeze(1)
        guess_edge = guess & label_edges(torch.where(valid, pred, -1)).unsqueeze(1)
        dims = (2, 3)
        matched_guess = (guess_edge & dilate(truth_edge, tolerance)).sum(dims).double()
        matched_truth = (truth_edge & dilate(guess_edge, tolerance)).sum(dims).double()
        guess_total, truth_total = guess_edge.sum(dims).double(), truth_edge.sum(dims).double()
        precision = matched_guess / guess_total.clamp(min=1)
        recall = matched_truth / truth_total.clamp(min=1)
        f1 = 2 * precision * recall / (precision + recall).clamp(min=1e-12)
        counted = (guess_total + truth_total) > 0  # the class is in truth or prediction
        self.f1_sum.index_add_(0, present, (f1 * counted).sum(0))
        self.f1_count.index_add_(0, present, counted.sum(0).double())
        width = max(1, math.ceil(self.band * diagonal))
        truth_band, guess_band = inner_band(truth, width), inner_band(guess, width)
        self.band_intersection.index_add_(
            0, present, (truth_band & guess_band).sum((0, 2, 3)).double()
        )
        self.band_union.index_add_(0, present, (truth_band | guess_band).sum((0, 2, 3)).double())

    def merge(self, other: BoundaryMetrics) -> BoundaryMetrics:
        for name in _COUNTS:
            getattr(self, name).add_(getattr(other, name).to(self.f1_sum.device))
        return self

    def all_reduce(self) -> None:
        """Sum the counts across processes when running distributed."""
        if dist.is_available() and dist.is_initialized():
            for name in _COUNTS:
                dist.all_reduce(getattr(self, name))

    def compute(self) -> dict[str, Any]:
        nan = torch.tensor(float("nan"), dtype=torch.float64, device=self.f1_sum.device)
        bf = torch.where(self.f1_count > 0, self.f1_sum / self.f1_count.clamp(min=1), nan)
        biou = torch.where(
            self.band_union > 0, self.band_intersection / self.band_union.clamp(min=1), nan
        )
        return {
            "boundary_f1": bf.tolist(),
            "mean_boundary_f1": nanmean(bf),
            "boundary_iou": biou.tolist(),
            "mean_boundary_iou": nanmean(biou),
            "boundary_f1_tolerance": f"{self.tolerance} x image diagonal",
            "boundary_iou_band": f"{self.band} x image diagonal",
            "boundary_averaging": "BF: per image and class, mean over images, then macro over "
            "classes; boundary IoU: summed over the dataset, then macro over classes",
        }
