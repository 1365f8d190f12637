"""`semseg export`: ONNX files and shareable model folders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from semseg.cli.options import Checkpoint
from semseg.errors import SemsegError

FORMATS = ("onnx", "folder")


def register(app: typer.Typer) -> None:
    app.command()(export)


def export(
    checkpoint: Checkpoint,
    out: Annotated[Path, typer.Option("--out", "-o", help="model.onnx, or a new folder")],
    format: Annotated[str, typer.Option(help="onnx or folder")] = "onnx",  # noqa: A002
    uint8_input: Annotated[
        bool, typer.Option(help="onnx: take N x H x W x 3 uint8 RGB, normalise in the graph")
    ] = False,
    check: Annotated[
        bool, typer.Option(help="onnx: compare onnxruntime with PyTorch after writing")
    ] = True,
    licence: Annotated[str, typer.Option(help="folder: the model card's licence")] = "other",
) -> None:
    """Export a checkpoint: an ONNX file (dynamic size, metadata, parity check) or a model
    folder (model.safetensors, config.json, README.md card) to share or publish."""
    if format not in FORMATS:
        raise SemsegError(f"--format {format!r}: choose one of {', '.join(FORMATS)}")
    from semseg.console import console

    if format == "folder":
        from semseg.deploy.folder import export_folder

        console.print(f"wrote {export_folder(checkpoint, out, licence)} (model folder)")
        return
    from semseg.deploy.onnx_export import export_onnx

    export_onnx(checkpoint, out, uint8_input, check)
    console.print(f"wrote {out}")
