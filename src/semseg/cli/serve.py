"""`semseg serve`."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command()(serve)


def serve(
    model: Annotated[str, typer.Argument(help="checkpoint, model folder, ONNX file or hf://...")],
    host: Annotated[str, typer.Option(help="address to bind; 0.0.0.0 exposes it")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, ... (default: auto)")] = None,
    max_upload_mb: Annotated[float, typer.Option(help="largest upload accepted")] = 20.0,
    max_pixels: Annotated[int, typer.Option(help="largest image accepted")] = 40_000_000,
    max_waiting: Annotated[int, typer.Option(min=1, help="requests queued before 503")] = 8,
    max_batch: Annotated[
        int | None,
        typer.Option(min=1, help="images of one size per forward pass (default: measured)"),
    ] = None,
) -> None:
    """Serve a model over HTTP: POST /predict, GET /info, GET /healthz, and a page at /."""
    from semseg.deploy.server import ServeLimits, create_app, run_server
    from semseg.engine.predictor import load

    limits = ServeLimits(int(max_upload_mb * 2**20), max_pixels, max_waiting, max_batch)
    app = create_app(load(model, device=device), model, limits)
    run_server(app, host, port)
