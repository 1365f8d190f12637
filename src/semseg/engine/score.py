"""`semseg.score`: score a folder of predicted masks against ground truth with no model,
so any tool's predictions get the same metrics as semseg's own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from semseg.boundary import BoundaryMetrics
from semseg.classes import ClassSet
from semseg.console import class_table, console, summary_line, track
from semseg.data.io import MASK_EXTENSIONS, read_mask
from semseg.data.labels import LabelDecoder
from semseg.data.listing import files_by_stem
from semseg.errors import SemsegError
from semseg.files import check_output_file, write_json
from semseg.metrics import NAN_RULE, ConfusionMatrix, distribution, per_image_miou


def score(
    pred_dir: Path | str,
    gt_dir: Path | str,
    classes_file: Path | str,
    out: Path | str | None = None,
    pred_rgb: bool = False,
    tolerance: float = 0.0075,
) -> dict[str, Any]:
    """Metrics of predicted masks against ground-truth masks, paired by file stem.

    Args:
        pred_dir: predicted masks (NAME.png): class indices, or palette colours with
            `pred_rgb`.
        gt_dir: ground-truth index masks (NAME.png); every one needs a prediction.
        classes_file: classes.yaml (names, palette, ignore_index).
        out: write the JSON summary here (default: none).
        pred_rgb: predictions are colour images mapped through the palette.
        tolerance: boundary F1 tolerance, as a fraction of the image diagonal.

    Returns:
        The summary: metrics (NaN rule applied, boundary F1 included), images, classes.

    Raises:
        SemsegError: a missing folder, no ground truth, a missing prediction, a mask of
            another size, or values outside the classes.
    """
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    if out is not None:
        out = check_output_file(out, "--out")
    classes = ClassSet.from_yaml(Path(classes_file))
    truths, preds = _paired_masks(pred_dir, gt_dir)
    confusion, boundary, image_miou = _accumulate(truths, preds, classes, pred_rgb, tolerance)
    metrics = confusion.compute() | boundary.compute()
    metrics["per_image_miou"] = distribution([float(v) for v in image_miou])
    console.print(class_table(metrics, classes.names, f"{pred_dir} against {gt_dir}"))
    console.print(summary_line(metrics))
    extra = sorted(set(preds) - set(truths))
    if extra:
        console.print(f"note: {len(extra)} prediction(s) without ground truth were not scored")
    summary = {
        "predictions": str(pred_dir),
        "ground_truth": str(gt_dir),
        "images": len(truths),
        "class_names": list(classes.names),
        "metrics": metrics,
        "nan_rule": NAN_RULE,
    }
    if out is not None:
        write_json(out, summary)
        console.print(f"wrote {out}")
    return summary


def _paired_masks(pred_dir: Path, gt_dir: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    for folder in (pred_dir, gt_dir):
        if not folder.is_dir():
            raise SemsegError(f"{folder}: folder not found; pass folders of mask PNGs")
    truths, truth_problems = files_by_stem(gt_dir, MASK_EXTENSIONS)
    preds, pred_problems = files_by_stem(pred_dir, MASK_EXTENSIONS)
    if truth_problems or pred_problems:
        raise (truth_problems + pred_problems)[0]
    if not truths:
        raise SemsegError(f"{gt_dir}: no ground-truth masks ({', '.join(MASK_EXTENSIONS)})")
    missing = sorted(set(truths) - set(preds))
    if missing:
        raise SemsegError(
            f"{pred_dir}: {len(missing)} ground-truth mask(s) have no prediction, e.g. "
            f"{missing[0]}; name predictions like the ground truth (NAME.png)"
        )
    return truths, preds


def _accumulate(
    truths: dict[str, Path],
    preds: dict[str, Path],
    classes: ClassSet,
    pred_rgb: bool,
    tolerance: float,
) -> tuple[ConfusionMatrix, BoundaryMetrics, list[torch.Tensor]]:
    truth_decoder = LabelDecoder(classes)
    pred_decoder = LabelDecoder(classes, rgb=pred_rgb)
    confusion = ConfusionMatrix(classes.num_classes, classes.ignore_index)
    boundary = BoundaryMetrics(classes.num_classes, classes.ignore_index, tolerance)
    image_miou: list[torch.Tensor] = []
    for name in track(sorted(truths), "scoring"):
        truth = torch.from_numpy(truth_decoder.decode(*read_mask(truths[name]), truths[name]))
        pred = torch.from_numpy(pred_decoder.decode(*read_mask(preds[name]), preds[name]))
        if pred.shape != truth.shape:
            raise SemsegError(
                f"{preds[name]}: prediction is {pred.shape[1]}x{pred.shape[0]}, ground truth "
                f"{truth.shape[1]}x{truth.shape[0]} (WxH); predict at the label resolution"
            )
        pred, truth = pred.long()[None], truth.long()[None]
        confusion.update(pred, truth)
        boundary.update(pred, truth)
        image_miou += per_image_miou(pred, truth, classes.num_classes, classes.ignore_index)
    return confusion, boundary, image_miou
