"""`semseg config show`."""

from __future__ import annotations

import typer

from semseg.cli.options import ConfigFile, Overrides

app = typer.Typer(help="Inspect configurations.", no_args_is_help=True)


@app.command("show")
def show(overrides: Overrides = None, config: ConfigFile = None) -> None:
    """Print the resolved configuration (defaults + file + overrides) as YAML."""
    from semseg.config import load_config

    typer.echo(load_config(config, overrides).to_yaml(), nl=False)
