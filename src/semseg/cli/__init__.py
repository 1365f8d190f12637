"""The `semseg` command line: one module per command group, each a thin layer that
parses arguments and calls the library function of the same job (semseg.train,
semseg.evaluate, semseg.predict_folder, ...). Library imports happen inside the commands,
so `semseg --help` answers without loading torch (the package imports lazily too)."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from semseg.cli import config, data, evaluate, export, models, predict, serve, train
from semseg.errors import SemsegError

app = typer.Typer(
    help="Semantic segmentation: train, evaluate and predict from one command.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
for module in (train, evaluate, predict, export, serve, models):
    module.register(app)
app.add_typer(config.app, name="config")
app.add_typer(data.app, name="data")

_debug = False


@app.callback()
def _global_options(
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks on errors")] = False,
) -> None:
    global _debug
    _debug = debug or os.environ.get("SEMSEG_DEBUG") == "1"


def main() -> None:
    try:
        app()
    except SemsegError as err:
        if _debug:
            raise
        # One line, not wrapped: the message already names the file or key and the fix.
        message = " ".join(str(err).split())
        rank = os.environ.get("RANK", "0")  # under torchrun every process may report it
        sys.stderr.write(
            f"error: {message}\n" if rank == "0" else f"error (rank {rank}): {message}\n"
        )
        sys.exit(2)
