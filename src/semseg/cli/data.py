"""`semseg data check | preview | convert | formats`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from semseg.cli.options import ConfigFile, Overrides

app = typer.Typer(help="Check, preview and convert datasets.", no_args_is_help=True)

Splits = Annotated[
    list[str] | None,
    typer.Option("--split", help="split to use (repeatable; default: train and val)"),
]


def _data_config(config: Path | None, overrides: list[str] | None):
    from semseg.config import load_config

    return load_config(config, overrides).data


@app.command("check")
def check(
    overrides: Overrides = None,
    config: ConfigFile = None,
    split: Splits = None,
    stats: Annotated[
        Path | None, typer.Option(help="also write the class statistics JSON here")
    ] = None,
) -> None:
    """Read every sample; list each problem with its file; class statistics and weights.

    Exit code 0 when clean, 2 when problems were found."""
    from semseg.data.check import check_data

    if not check_data(_data_config(config, overrides), split, stats).clean:
        raise typer.Exit(2)


@app.command("preview")
def preview(
    overrides: Overrides = None,
    config: ConfigFile = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG to write")] = Path("preview.png"),
    count: Annotated[int, typer.Option(min=1, max=64, help="number of samples")] = 8,
    seed: Annotated[int, typer.Option(help="which samples and augmentations")] = 0,
) -> None:
    """Augmented training samples beside their masks: what the model will see."""
    from semseg.data.preview import preview_data

    preview_data(_data_config(config, overrides), out, count, seed)


@app.command("convert")
def convert(
    overrides: Overrides = None,
    config: ConfigFile = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="new folder-layout dataset")] = Path(
        "converted"
    ),
    split: Splits = None,
) -> None:
    """Convert any dataset to the folder layout with index PNG masks.

    RGB colour masks, label ids, trimaps and COCO polygons all become class indices."""
    from semseg.console import console
    from semseg.data.convert import convert_to_folder

    counts = convert_to_folder(_data_config(config, overrides), out, split)
    listing = ", ".join(f"{name}: {count}" for name, count in counts.items())
    console.print(
        f"wrote {out} in the folder layout ({listing}); train on it with "
        f"data.format=folder data.root={out}"
    )


@app.command("formats")
def formats(overrides: Overrides = None, config: ConfigFile = None) -> None:
    """List the registered dataset formats (the config's plugins' too)."""
    from rich.table import Table

    from semseg.config import load_config
    from semseg.console import console
    from semseg.data import FORMATS

    load_config(config, overrides)  # imports the config's plugins, which may add formats
    table = Table(title="dataset formats (data.format)", title_justify="left")
    for column in ("name", "default splits", "description"):
        table.add_column(column)
    for name in FORMATS.names():
        entry = FORMATS.get(name)
        table.add_row(name, " / ".join(entry.info["default_splits"]), entry.summary)
    console.print(table)
