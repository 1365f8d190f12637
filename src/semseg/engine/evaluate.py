"""Evaluation: run the inferencer over a loader into one ConfusionMatrix."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader

from semseg.console import progress_bar
from semseg.engine.inference import predict_logits
from semseg.metrics import ConfusionMatrix


@dataclass
class EvalResult:
    confusion: ConfusionMatrix
    mean_loss: float | None


def evaluate(
    model: nn.Module,
    loader: DataLoader,
    num_classes: int,
    ignore_index: int,
    device: torch.device,
    loss_fn: nn.Module | None = None,
    description: str = "eval",
) -> EvalResult:
    """Whole-image inference at the stored label resolution; returns the confusion matrix
    and, when `loss_fn` is given, the loss averaged over batches."""
    model.eval()
    confusion = ConfusionMatrix(num_classes, ignore_index, device=device)
    loss_sum = torch.zeros((), device=device)
    with progress_bar() as progress:
        task = progress.add_task(description, total=len(loader), info="")
        for images, masks in loader:
            images = images.to(device, non_blocking=True)
            masks = masks.to(device, non_blocking=True)
            logits = predict_logits(model, images)
            confusion.update(logits.argmax(1), masks)
            if loss_fn is not None:
                loss_sum += loss_fn(logits, masks)
            progress.advance(task)
    confusion.all_reduce()
    mean_loss = (loss_sum / max(1, len(loader))).item() if loss_fn is not None else None
    return EvalResult(confusion, mean_loss)
