"""`semseg config show` and `semseg config docs`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from semseg.cli.options import ConfigFile, Overrides

app = typer.Typer(help="Inspect configurations.", no_args_is_help=True)


@app.command("show")
def show(overrides: Overrides = None, config: ConfigFile = None) -> None:
    """Print the resolved configuration (defaults + file + overrides) as YAML."""
    from semseg.config import load_config

    typer.echo(load_config(config, overrides).to_yaml(), nl=False)


@app.command("docs")
def docs(
    out: Annotated[
        Path | None,
        typer.Option("--out", help="write the page here (docs/configuration.md); default: print"),
    ] = None,
) -> None:
    """The configuration reference (every key, type, default, meaning) as Markdown."""
    from semseg.config_docs import configuration_reference
    from semseg.files import write_text_atomic

    page = configuration_reference()
    if out is None:
        typer.echo(page, nl=False)
    else:
        write_text_atomic(out, page)
        typer.echo(f"wrote {out}")
