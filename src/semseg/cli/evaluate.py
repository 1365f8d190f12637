"""`semseg eval`, `semseg calibrate` and `semseg score`: metrics of a checkpoint, its
class bias, and metrics of any tool's predicted masks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from semseg.cli.options import Checkpoint, ConfigFile, Overrides


def register(app: typer.Typer) -> None:
    app.command("eval")(evaluate)
    app.command()(calibrate)
    app.command()(score)


def evaluate(
    checkpoint: Checkpoint,
    overrides: Overrides = None,
    config: ConfigFile = None,
    split: Annotated[
        str | None, typer.Option(help="split to evaluate (default: data.val_split)")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="JSON summary path (default: eval.json beside it)")
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="also write an HTML report into this folder")
    ] = None,
    worst: Annotated[int, typer.Option(min=0, max=50, help="worst images in the report")] = 6,
) -> None:
    """Evaluate a checkpoint: per-class table (with boundary F1), JSON summary, report.

    Inference follows eval.* keys: eval.mode=slide eval.crop_size=512 eval.stride=341,
    eval.scales=[0.75,1,1.25] eval.flip=true."""
    from semseg.engine.checkpoint_eval import evaluate as run

    run(checkpoint, split, overrides, config, out, report, worst)


def calibrate(
    checkpoint: Checkpoint,
    overrides: Overrides = None,
    config: ConfigFile = None,
    split: Annotated[
        str | None, typer.Option(help="split to fit on (default: data.val_split)")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="checkpoint to write (default: NAME_calibrated.pt)")
    ] = None,
) -> None:
    """Fit per-class logit offsets on a split and save them with the model.

    The offsets are t x log(training class prior), t chosen by mIoU: they trade the extra
    recall of class-weighted training back for IoU.

    The offsets apply wherever the checkpoint is used (eval, predict, semseg.load).
    Fit on the validation split and score on another (train.fit_class_bias=true does
    this at the end of training)."""
    from semseg.engine.calibrate import calibrate as run

    run(checkpoint, split, overrides, config, out)


def score(
    pred: Annotated[Path, typer.Option(help="folder of predicted masks (NAME.png)")],
    gt: Annotated[Path, typer.Option(help="folder of ground-truth masks (NAME.png)")],
    classes: Annotated[Path, typer.Option(help="classes.yaml (names, ignore_index)")],
    out: Annotated[Path | None, typer.Option(help="write the JSON summary here")] = None,
    rgb: Annotated[bool, typer.Option(help="predictions are palette colours")] = False,
    tolerance: Annotated[
        float, typer.Option(help="boundary F1 tolerance, fraction of the diagonal")
    ] = 0.0075,
) -> None:
    """Score predicted masks against ground truth with no model (any tool's output)."""
    from semseg.engine.score import score as run

    run(pred, gt, classes, out, rgb, tolerance)
