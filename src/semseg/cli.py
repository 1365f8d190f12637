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
) -> None:
    """Evaluate a checkpoint: per-class table and a JSON summary."""
    from semseg.commands import run_eval

    run_eval(checkpoint, config, overrides, split, out)


@app.command()
def predict(
    checkpoint: Annotated[Path, typer.Argument(help="a checkpoint, e.g. runs/NAME/best.pt")],
    inputs: Annotated[list[Path], typer.Argument(help="image files or folders of images")],
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder")] = Path("predictions"),
    overlays: Annotated[bool, typer.Option(help="also write NAME_overlay.png")] = True,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, ... (default: auto)")] = None,
) -> None:
    """Predict masks: palette index PNGs and colour overlays."""
    from semseg.commands import run_predict

    run_predict(checkpoint, inputs, out, overlays, device)


@config_app.command("show")
def config_show(overrides: Overrides = None, config: ConfigFile = None) -> None:
    """Print the resolved configuration (defaults + file + overrides) as YAML."""
    from semseg.config import load_config

    typer.echo(load_config(config, overrides).to_yaml(), nl=False)


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
