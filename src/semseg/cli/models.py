"""`semseg models`."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command()(models)


def models(
    size: Annotated[str, typer.Option(help="input size HxW for GFLOPs and latency")] = "360x480",
    measure: Annotated[bool, typer.Option(help="also measure CPU latency (batch 1)")] = False,
    classes: Annotated[int, typer.Option(min=2, help="number of classes")] = 11,
) -> None:
    """List registered models: parameters, GFLOPs and (with --measure) CPU latency."""
    from semseg.engine.profile import model_table, parse_size

    model_table(parse_size(size), measure, classes)
