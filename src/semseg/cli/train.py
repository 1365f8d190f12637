"""`semseg train`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from semseg.cli.options import ConfigFile, Overrides


def register(app: typer.Typer) -> None:
    app.command()(train)


def train(
    overrides: Overrides = None,
    config: ConfigFile = None,
    resume: Annotated[
        Path | None, typer.Option(help="continue a run from its last.pt", show_default=False)
    ] = None,
) -> None:
    """Train a model (no arguments: the built-in shapes dataset, under a minute on a CPU)."""
    from semseg.config import load_config
    from semseg.engine.checkpoint import load_checkpoint
    from semseg.engine.train import train as run_training

    base = load_checkpoint(resume)["config"] if resume else None
    run_training(load_config(config, overrides, base=base), resume=resume)
