"""Boundary metrics, accumulated batch by batch on the model's device.

Boundary F1 (BF, Csurka et al. 2013, as reported by SegNet): for each image and class,
the boundary pixels of the predicted and true class regions are matched within a
tolerance of `tolerance` x the image diagonal; precision and recall of the matches give
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
import torch.nn.functional as F


def _disk(radius: int, device: torch.device) -> torch.Tensor:
    offsets = torch.arange(-radius, radius + 1, device=device, dtype=torch.float32)
    disk = (offsets[:, None] ** 2 + offsets[None, :] ** 2) <= radius**2
    return disk.float()[None, None]


def dilate(masks: torch.Tensor, radius: int) -> torch.Tensor:
    """Binary dilation of N x K x H x W masks by a disk (outside the image counts as 0)."""
    if radius <= 0:
        return masks
    n, k, h, w = masks.shape
    kernel = _disk(radius, masks.device)
    grown = F.conv2d(masks.reshape(n * k, 1, h, w).float(), kernel, padding=radius)
    return (grown > 0.5).reshape(n, k, h, w)


def inner_band(masks: torch.Tensor, width: int) -> torch.Tensor:
    """Pixels of each region within `width` of its contour (image edges are no contour)."""
    outside = ~masks
    # Pad with "inside" so that the image border does not count as a contour.
    padded = F.pad(outside.float(), (width,) * 4, value=0.0) > 0.5
    near_outside = dilate(padded, width)[..., width:-width, width:-width]
    return masks & near_outside


def _regions(labels: torch.Tensor, num_classes: int, valid: torch.Tensor) -> torch.Tensor:
    """N x H x W labels -> N x K x H x W class regions, nothing at invalid pixels."""
    classes = torch.arange(num_classes, device=labels.device).view(1, -1, 1, 1)
    return (labels.unsqueeze(1) == classes) & valid.unsqueeze(1)


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
        truth = _regions(target, self.num_classes, valid)
        guess = _regions(pred, self.num_classes, valid)
        diagonal = math.hypot(*target.shape[-2:])
        tolerance = max(1, math.ceil(self.tolerance * diagonal))
        truth_edge, guess_edge = inner_band(truth, 1), inner_band(guess, 1)
        dims = (2, 3)
        matched_guess = (guess_edge & dilate(truth_edge, tolerance)).sum(dims).double()
        matched_truth = (truth_edge & dilate(guess_edge, tolerance)).sum(dims).double()
        guess_total, truth_total = guess_edge.sum(dims).double(), truth_edge.sum(dims).double()
        precision = matched_guess / guess_total.clamp(min=1)
        recall = matched_truth / truth_total.clamp(min=1)
        f1 = 2 * precision * recall / (precision + recall).clamp(min=1e-12)
        counted = (guess_total + truth_total) > 0  # the class is in truth or prediction
        self.f1_sum += (f1 * counted).sum(0)
        self.f1_count += counted.sum(0)
        width = max(1, math.ceil(self.band * diagonal))
        truth_band, guess_band = inner_band(truth, width), inner_band(guess, width)
        self.band_intersection += (truth_band & guess_band).sum((0, 2, 3)).double()
        self.band_union += (truth_band | guess_band).sum((0, 2, 3)).double()

    def merge(self, other: BoundaryMetrics) -> BoundaryMetrics:
        for name in ("f1_sum", "f1_count", "band_intersection", "band_union"):
            getattr(self, name).add_(getattr(other, name).to(self.f1_sum.device))
        return self

    def compute(self) -> dict[str, Any]:
        nan = torch.tensor(float("nan"), dtype=torch.float64, device=self.f1_sum.device)
        bf = torch.where(self.f1_count > 0, self.f1_sum / self.f1_count.clamp(min=1), nan)
        biou = torch.where(
            self.band_union > 0, self.band_intersection / self.band_union.clamp(min=1), nan
        )
        return {
            "boundary_f1": bf.tolist(),
            "mean_boundary_f1": _nanmean(bf),
            "boundary_iou": biou.tolist(),
            "mean_boundary_iou": _nanmean(biou),
            "boundary_f1_tolerance": f"{self.tolerance} x image diagonal",
            "boundary_iou_band": f"{self.band} x image diagonal",
            "boundary_averaging": "BF: per image and class, mean over images, then macro over "
            "classes; boundary IoU: summed over the dataset, then macro over classes",
        }


def _nanmean(values: torch.Tensor) -> float:
    finite = values[~values.isnan()]
    return float(finite.mean()) if finite.numel() else float("nan")
