"""The evaluation loop: run the inferencer over a loader into one ConfusionMatrix (and,
for `semseg eval`, boundary metrics), with per-image mIoU. Validation, eval and the
benchmarks share it. Under torchrun each process scores its shard of the loader
(EvaluationShard: every sample exactly once) and the counts are summed across the
processes, so every rank holds the result of one process scoring the whole split."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from semseg.boundary import BoundaryMetrics
from semseg.console import progress_bar
from semseg.data.base import SegmentationDataset
from semseg.data.sampling import EvaluationShard
from semseg.engine.distributed import World, current_world
from semseg.engine.inference import InferenceSettings, predict_logits
from semseg.metrics import ConfusionMatrix, per_image_miou


@dataclass
class EvalResult:
    confusion: ConfusionMatrix
    mean_loss: float | None
    boundary: BoundaryMetrics | None = None
    image_miou: list[float] = field(default_factory=list)  # in loader order


def evaluate_model(
    model: nn.Module,
    loader: DataLoader,
    num_classes: int,
    ignore_index: int,
    device: torch.device,
    loss_fn: nn.Module | None = None,
    description: str = "eval",
    settings: InferenceSettings | None = None,
    boundary_tolerance: float | None = None,
) -> EvalResult:
    """Inference at the stored label resolution (scores are resized to the labels, never
    the labels to the scores). `loss_fn` adds the mean loss (single-pass inference only);
    `boundary_tolerance` adds boundary F1 / IoU. Per-image mIoU comes with every run."""
    settings = settings or InferenceSettings()
    model.eval()
    confusion = ConfusionMatrix(num_classes, ignore_index, device=device)
    boundary = None
    if boundary_tolerance is not None:
        boundary = BoundaryMetrics(num_classes, ignore_index, boundary_tolerance, device=device)
    with_loss = loss_fn is not None and not settings.augmented
    loss_sum = torch.zeros((), device=device)  # batch losses weighted by their images
    images_seen = 0
    image_miou: list[torch.Tensor] = []
    with progress_bar() as progress:
        task = progress.add_task(description, total=len(loader), info="")
        for images, masks in loader:
            images = images.to(device, non_blocking=True)
            masks = masks.to(device, non_blocking=True)
            scores = predict_logits(model, images, settings)
            if scores.shape[-2:] != masks.shape[-2:]:
                scores = F.interpolate(
                    scores.float(), size=masks.shape[-2:], mode="bilinear", align_corners=False
                )
            pred = scores.argmax(1)
            confusion.update(pred, masks)
            if with_loss:
                loss_sum += loss_fn(scores, masks) * len(images)
                images_seen += len(images)
            image_miou.append(per_image_miou(pred, masks, num_classes, ignore_index))
            if boundary is not None:
                boundary.update(pred, masks)
            progress.advance(task)
    per_image = torch.cat(image_miou).tolist() if image_miou else []
    shard = getattr(loader, "sampler", None)  # any iterable of batches works alone
    if isinstance(shard, EvaluationShard):
        world = current_world()
        confusion.all_reduce()
        if boundary is not None:
            boundary.all_reduce()
        per_image = _in_dataset_order(per_image, shard.indices, world)
        loss_sum, images_seen = world.sum(loss_sum.item()), int(world.sum(images_seen))
    # Per image, not per batch: a short last batch (or a rank's shorter shard) counts
    # for its images only, so one process and torchrun agree.
    mean_loss = float(loss_sum / max(1, images_seen)) if with_loss else None
    return EvalResult(confusion, mean_loss, boundary, per_image)


def _in_dataset_order(values: list[float], indices: list[int], world: World) -> list[float]:
    """Every rank's per-image values of its shard, merged into the dataset's order."""
    pairs = [
        pair for part in world.gather(list(zip(indices, values, strict=True))) for pair in part
    ]
    return [value for _, value in sorted(pairs)]


def sample_predictions(
    model: nn.Module,
    dataset: SegmentationDataset,
    indices: list[int],
    settings: InferenceSettings,
    device: torch.device,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(image H x W x C uint8, truth, prediction) for the given samples, for figures."""
    model.eval()
    rows = []
    for index in indices:
        image, truth = dataset.load(index)
        normalised, _ = dataset[index]
        scores = predict_logits(model, normalised.unsqueeze(0).to(device), settings)
        prediction = scores.argmax(1)[0].cpu().numpy()
        rows.append((image.permute(1, 2, 0).numpy(), truth.numpy(), prediction))
    return rows
