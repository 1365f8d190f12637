"""The `semseg` command line: each command parses, builds and calls the engine."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from semseg.errors import SemsegError

app = typer.Typer(
    help="Semantic segmentation: train, evaluate and predict from one command.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect configurations.", no_args_is_help=True)
app.add_typer(config_app, name="config")
data_app = typer.Typer(help="Check, preview and convert datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")

_debug = False

Overrides = Annotated[
    list[str] | None,
    typer.Argument(
        help="dotted overrides KEY=VALUE, e.g. model.name=unet train.epochs=3", show_default=False
    ),
]
ConfigFile = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML experiment file", show_default=False)
]


@app.callback()
def _global_options(
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks on errors")] = False,
) -> None:
    global _debug
    _debug = debug or os.environ.get("SEMSEG_DEBUG") == "1"


@app.command()
def train(
    overrides: Overrides = None,
    config: ConfigFile = None,
    resume: Annotated[
        Path | None, typer.Option(help="continue a run from its last.pt", show_default=False)
    ] = None,
) -> None:
    """Train a model (no arguments: the built-in shapes dataset, about 2 minutes on a CPU)."""
    from semseg.config import load_config
    from semseg.engine.checkpoint import load_checkpoint
    from semseg.engine.train import train as run_training

    base = load_checkpoint(resume)["config"] if resume else None
    resolved = load_config(config, overrides, base=base)
    run_training(resolved, resume=resume)


@app.command("eval")
def evaluate(
    checkpoint: Annotated[Path, typer.Argument(help="a checkpoint, e.g. runs/NAME/best.pt")],
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
    from semseg.commands import run_eval

    run_eval(checkpoint, config, overrides, split, out, report, worst)


@app.command()
def calibrate(
    checkpoint: Annotated[Path, typer.Argument(help="a checkpoint, e.g. runs/NAME/best.pt")],
    overrides: Overrides = None,
    config: ConfigFile = None,
    split: Annotated[
        str | None, typer.Option(help="split to fit on (default: data.val_split)")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="checkpoint to write (default: NAME_calibrated.pt)")
    ] = None,
) -> None:
    """Fit per-class logit offsets, t x log(training class prior) with t chosen by mIoU on
    a split, and save them with the model: trades the extra recall of class-weighted
    training back for IoU.

    The offsets apply wherever the checkpoint is used (eval, predict, semseg.load).
    Fit on the validation split and score on another (train.fit_class_bias=true does
    this at the end of training)."""
    from semseg.commands import run_calibrate

    run_calibrate(checkpoint, config, overrides, split, out)


@app.command()
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
    from semseg.commands import run_score

    run_score(pred, gt, classes, out, rgb, tolerance)


@app.command()
def predict(
    checkpoint: Annotated[Path, typer.Argument(help="a checkpoint, e.g. runs/NAME/best.pt")],
    inputs: Annotated[list[Path], typer.Argument(help="image files or folders of images")],
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder")] = Path("predictions"),
    overlays: Annotated[bool, typer.Option(help="also write NAME_overlay.png")] = True,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, ... (default: auto)")] = None,
    tile: Annotated[
        int | None, typer.Option(help="sliding window with this tile size (1/3 overlap)")
    ] = None,
    flip: Annotated[bool, typer.Option(help="test-time horizontal flip")] = False,
    scales: Annotated[str | None, typer.Option(help="test-time scales, e.g. 0.75,1,1.25")] = None,
) -> None:
    """Predict masks: palette index PNGs and colour overlays."""
    from semseg.commands import run_predict

    # The flags given replace the checkpoint's eval settings; the rest (amp, ...) stay.
    eval_overrides = {"flip": flip} if flip else {}
    if tile:
        eval_overrides |= {"mode": "slide", "crop_size": tile, "stride": tile * 2 // 3}
    if scales:
        eval_overrides["scales"] = list(_parse_scales(scales))
    run_predict(checkpoint, inputs, out, overlays, device, eval_overrides)


def _parse_scales(text: str) -> tuple[float, ...]:
    try:
        scales = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise SemsegError(f"--scales {text!r}: expected numbers like 0.75,1,1.25") from None
    if not scales or min(scales) <= 0:
        raise SemsegError(f"--scales {text!r}: scales must be > 0")
    return scales


@app.command()
def models(
    size: Annotated[str, typer.Option(help="input size HxW for GFLOPs and latency")] = "360x480",
    measure: Annotated[bool, typer.Option(help="also measure CPU latency (batch 1)")] = False,
    classes: Annotated[int, typer.Option(min=2, help="number of classes")] = 11,
) -> None:
    """List registered models: parameters, GFLOPs and (with --measure) CPU latency."""
    from semseg.model_commands import run_models

    run_models(size, measure, classes)


@config_app.command("show")
def config_show(overrides: Overrides = None, config: ConfigFile = None) -> None:
    """Print the resolved configuration (defaults + file + overrides) as YAML."""
    from semseg.config import load_config

    typer.echo(load_config(config, overrides).to_yaml(), nl=False)


ConfigAndOverrides = Annotated[
    list[str] | None,
    typer.Argument(
        help="an optional CONFIG.yaml, then dotted overrides, e.g. data.format=camvid "
        "data.root=/data/camvid",
        show_default=False,
    ),
]
Splits = Annotated[
    list[str] | None,
    typer.Option("--split", help="split to use (repeatable; default: train and val)"),
]


def _data_config(arguments: list[str] | None):
    """`[CONFIG.yaml] [KEY=VALUE ...]` -> the data section of the resolved config."""
    from semseg.config import load_config

    arguments = list(arguments or [])
    config_file = None
    if arguments and "=" not in arguments[0]:
        config_file = Path(arguments.pop(0))
    return load_config(config_file, arguments).data


@data_app.command("check")
def data_check(
    arguments: ConfigAndOverrides = None,
    split: Splits = None,
    stats: Annotated[
        Path | None, typer.Option(help="also write the class statistics JSON here")
    ] = None,
) -> None:
    """Read every sample; list each problem with its file; class statistics and weights.
    Exit code 0 when clean, 2 when problems were found."""
    from semseg.dataset_commands import run_data_check

    if not run_data_check(_data_config(arguments), split, stats):
        raise typer.Exit(2)


@data_app.command("preview")
def data_preview(
    arguments: ConfigAndOverrides = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG to write")] = Path("preview.png"),
    count: Annotated[int, typer.Option(min=1, max=64, help="number of samples")] = 8,
    seed: Annotated[int, typer.Option(help="which samples and augmentations")] = 0,
) -> None:
    """Augmented training samples beside their masks: what the model will see."""
    from semseg.dataset_commands import run_data_preview

    run_data_preview(_data_config(arguments), out, count, seed)


@data_app.command("convert")
def data_convert(
    arguments: ConfigAndOverrides = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="new folder-layout dataset")] = Path(
        "converted"
    ),
    split: Splits = None,
) -> None:
    """Convert any dataset (RGB colour masks, label ids, trimaps, COCO polygons, ...) to
    the folder layout with index PNG masks."""
    from semseg.dataset_commands import run_data_convert

    run_data_convert(_data_config(arguments), out, split)


def main() -> None:
    try:
        app()
    except SemsegError as err:
        if _debug:
            raise
        # One line, not wrapped: the message already names the file or key and the fix.
        message = " ".join(str(err).split())
        sys.stderr.write(f"error: {message}\n")
        sys.exit(2)
