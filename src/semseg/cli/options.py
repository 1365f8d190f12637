"""Arguments every command spells the same way: the config file and dotted overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Overrides = Annotated[
    list[str] | None,
    typer.Argument(
        help="dotted overrides KEY=VALUE, e.g. model.name=unet train.epochs=3", show_default=False
    ),
]
ConfigFile = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML experiment file", show_default=False)
]
Checkpoint = Annotated[Path, typer.Argument(help="a checkpoint, e.g. runs/NAME/best.pt")]
