"""`semseg models`."""

from __future__ import annotations

from typing import Annotated

import typer

from semseg.cli.options import ConfigFile, Overrides


def register(app: typer.Typer) -> None:
    app.command()(models)


def models(
    overrides: Overrides = None,
    config: ConfigFile = None,
    size: Annotated[str, typer.Option(help="input size HxW for GFLOPs and latency")] = "360x480",
    measure: Annotated[bool, typer.Option(help="also measure CPU latency (batch 1)")] = False,
    classes: Annotated[int, typer.Option(min=2, help="number of classes")] = 11,
) -> None:
    """List registered models: parameters, GFLOPs and (with --measure) CPU latency.
    With a config (or `plugins=[...]`), its plugins' models are listed too."""
    from semseg.config import load_config
    from semseg.engine.profile import model_table, parse_size

    load_config(config, overrides)  # imports the config's plugins, which may add models
    model_table(parse_size(size), measure, classes)
