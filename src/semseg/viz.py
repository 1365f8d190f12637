"""Pictures: palette colouring, overlays, sample grids and training curves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from semseg.classes import IGNORE_COLOR, ClassSet  # noqa: E402


def colorize(mask: np.ndarray, classes: ClassSet) -> np.ndarray:
    """H x W class indices -> H x W x 3 uint8 palette colours (ignore drawn white)."""
    return classes.color_table()[np.asarray(mask).astype(np.int64).clip(0, 255)]


def overlay(image: np.ndarray, mask: np.ndarray, classes: ClassSet, alpha: float = 0.5):
    """Blend palette colours over an H x W x 3 uint8 image; ignore pixels stay untouched."""
    colours = colorize(mask, classes).astype(np.float32)
    blended = (1 - alpha) * image.astype(np.float32) + alpha * colours
    keep = np.asarray(mask) == classes.ignore_index
    blended[keep] = image[keep]
    return blended.round().astype(np.uint8)


def legend_handles(classes: ClassSet, include_ignore: bool = True) -> list[Patch]:
    handles = [
        Patch(facecolor=np.asarray(colour) / 255, edgecolor="0.5", label=name)
        for name, colour in zip(classes.names, classes.palette, strict=True)
    ]
    if include_ignore:
        handles.append(
            Patch(
                facecolor=np.asarray(IGNORE_COLOR) / 255,
                edgecolor="0.5",
                label=f"ignore ({classes.ignore_index})",
            )
        )
    return handles


def save_samples_figure(
    path: Path,
    rows: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    classes: ClassSet,
    names: Sequence[str] | None = None,
) -> None:
    """One row per sample: image | ground truth | prediction, with a class legend."""
    figure, axes = plt.subplots(len(rows), 3, figsize=(9, 3 * len(rows)), squeeze=False)
    for row, (image, truth, prediction) in enumerate(rows):
        panels = (image, colorize(truth, classes), colorize(prediction, classes))
        for column, (panel, title) in enumerate(
            zip(panels, ("image", "ground truth", "prediction"), strict=True)
        ):
            axis = axes[row, column]
            axis.imshow(panel, interpolation="nearest")
            axis.set_xticks([])
            axis.set_yticks([])
            label = f"{names[row]}: {title}" if names and column == 0 else title
            axis.set_title(label, fontsize=9)
    figure.legend(
        handles=legend_handles(classes),
        loc="lower center",
        ncol=min(6, classes.num_classes + 1),
        fontsize=8,
        frameon=False,
    )
    figure.tight_layout(rect=(0, 0.06 if len(rows) > 1 else 0.12, 1, 1))
    _save(figure, path)


def save_curves_figure(path: Path, history: Sequence[dict[str, Any]]) -> None:
    """Loss (train, val) and validation mIoU per epoch."""
    figure, (loss_axis, miou_axis) = plt.subplots(1, 2, figsize=(10, 3.6))
    epochs = [record["epoch"] for record in history]
    loss_axis.plot(epochs, [r["train_loss"] for r in history], marker="o", label="train")
    validated = [r for r in history if "val_miou" in r]
    if validated:
        val_epochs = [r["epoch"] for r in validated]
        loss_axis.plot(val_epochs, [r["val_loss"] for r in validated], marker="o", label="val")
        miou_axis.plot(
            val_epochs, [100 * r["val_miou"] for r in validated], marker="o", color="tab:green"
        )
    loss_axis.set(title="loss", xlabel="epoch")
    loss_axis.legend()
    miou_axis.set(title="validation mIoU (%)", xlabel="epoch")
    for axis in (loss_axis, miou_axis):
        axis.grid(alpha=0.3)
    figure.tight_layout()
    _save(figure, path)


def _save(figure: plt.Figure, path: Path) -> None:
    figure.savefig(path, dpi=100)
    plt.close(figure)


def save_preview_figure(
    path: Path,
    samples: Sequence[tuple[np.ndarray, np.ndarray]],
    classes: ClassSet,
    columns: int = 4,
) -> None:
    """Image | mask pairs (what the model sees after augmentation) in a grid, with legend."""
    rows = -(-len(samples) // columns)
    figure, axes = plt.subplots(
        rows, 2 * columns, figsize=(3 * columns, 1.7 * rows + 0.6), squeeze=False
    )
    for axis in axes.flat:
        axis.set_axis_off()
    for index, (image, mask) in enumerate(samples):
        row, column = divmod(index, columns)
        axes[row, 2 * column].imshow(image, cmap="gray" if image.ndim == 2 else None)
        axes[row, 2 * column + 1].imshow(colorize(mask, classes), interpolation="nearest")
    figure.legend(
        handles=legend_handles(classes),
        loc="lower center",
        ncol=min(8, classes.num_classes + 1),
        fontsize=7,
        frameon=False,
    )
    figure.tight_layout(rect=(0, 0.5 / (1.7 * rows + 0.6), 1, 1))
    _save(figure, path)
