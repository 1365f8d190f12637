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
from semseg.files import atomic_write


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
    errors: bool = False,
) -> None:
    """One row per sample: image | ground truth | prediction (| error map), with a legend."""
    titles = ["image", "ground truth", "prediction"] + (["errors"] if errors else [])
    figure, axes = plt.subplots(
        len(rows), len(titles), figsize=(3 * len(titles), 3 * len(rows)), squeeze=False
    )
    for row, (image, truth, prediction) in enumerate(rows):
        panels = [
            image.squeeze(-1) if image.shape[-1] == 1 else image,
            colorize(truth, classes),
            colorize(prediction, classes),
        ]
        if errors:
            panels.append(error_map(truth, prediction, classes.ignore_index))
        for column, (panel, title) in enumerate(zip(panels, titles, strict=True)):
            axis = axes[row, column]
            axis.imshow(panel, interpolation="nearest", cmap="gray" if panel.ndim == 2 else None)
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
    with_loss = [r for r in validated if r.get("val_loss") is not None]
    if with_loss:
        loss_axis.plot(
            [r["epoch"] for r in with_loss],
            [r["val_loss"] for r in with_loss],
            marker="o",
            label="val",
        )
    if validated:
        val_epochs = [r["epoch"] for r in validated]
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
    try:
        atomic_write(path, lambda file: figure.savefig(file, format="png", dpi=100))
    finally:
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


def error_map(truth: np.ndarray, prediction: np.ndarray, ignore_index: int) -> np.ndarray:
    """Green where right, red where wrong, grey where the label is ignored."""
    colours = np.zeros((*truth.shape, 3), dtype=np.uint8)
    colours[truth == prediction] = (40, 170, 70)
    colours[truth != prediction] = (220, 40, 40)
    colours[truth == ignore_index] = (150, 150, 150)
    return colours


def save_confusion_figure(path: Path, matrix: np.ndarray, names: Sequence[str]) -> None:
    """Rows normalised to 1: each row shows where a true class's pixels went (recall)."""
    totals = matrix.sum(1, keepdims=True)
    normalised = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)
    size = max(4.0, 0.45 * len(names) + 2)
    figure, axis = plt.subplots(figsize=(size + 1, size))
    image = axis.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    axis.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    axis.set_yticks(range(len(names)), names, fontsize=8)
    axis.set_xlabel("predicted")
    axis.set_ylabel("ground truth")
    if len(names) <= 25:
        for i in range(len(names)):
            for j in range(len(names)):
                value = normalised[i, j]
                if value >= 0.005:
                    axis.text(
                        j,
                        i,
                        f"{100 * value:.0f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if value > 0.5 else "black",
                    )
    figure.colorbar(image, ax=axis, fraction=0.046)
    axis.set_title("confusion matrix (% of each true class)")
    figure.tight_layout()
    _save(figure, path)


def save_iou_bars(path: Path, iou: Sequence[float], names: Sequence[str]) -> None:
    figure, axis = plt.subplots(figsize=(8, max(2.5, 0.3 * len(names) + 1)))
    values = [0 if v is None or np.isnan(v) else 100 * v for v in iou]
    axis.barh(range(len(names)), values, color="tab:blue")
    axis.set_yticks(range(len(names)), names, fontsize=8)
    axis.invert_yaxis()
    axis.set_xlim(0, 100)
    axis.set_xlabel("IoU (%)")
    for index, value in enumerate(values):
        axis.text(value + 1, index, f"{value:.1f}", va="center", fontsize=7)
    axis.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    _save(figure, path)


def save_histogram(path: Path, values: Sequence[float], label: str) -> None:
    figure, axis = plt.subplots(figsize=(6, 3))
    finite = [100 * v for v in values if v is not None and not np.isnan(v)]
    axis.hist(finite, bins=20, range=(0, 100), color="tab:purple")
    axis.set_xlabel(label)
    axis.set_ylabel("images")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    _save(figure, path)
