"""`semseg predict`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from semseg.cli.options import Checkpoint
from semseg.errors import SemsegError


def register(app: typer.Typer) -> None:
    app.command()(predict)


def predict(
    checkpoint: Checkpoint,
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
    from semseg.engine.predict_folder import predict_folder

    predict_folder(checkpoint, inputs, out, overlays, device, _eval_overrides(tile, flip, scales))


def _eval_overrides(tile: int | None, flip: bool, scales: str | None) -> dict[str, Any]:
    """The flags given, as eval.* keys replacing the checkpoint's settings (the rest, such
    as eval.amp, stay)."""
    overrides: dict[str, Any] = {"flip": True} if flip else {}
    if tile:
        overrides |= {"mode": "slide", "crop_size": tile, "stride": tile * 2 // 3}
    if scales:
        overrides["scales"] = list(_parse_scales(scales))
    return overrides


def _parse_scales(text: str) -> tuple[float, ...]:
    try:
        scales = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise SemsegError(f"--scales {text!r}: expected numbers like 0.75,1,1.25") from None
    if not scales or min(scales) <= 0:
        raise SemsegError(f"--scales {text!r}: scales must be > 0")
    return scales
