"""`semseg serve MODEL`: an HTTP endpoint and a web page for a model (extra
`semseg[serve]`: fastapi, uvicorn, python-multipart).

    POST /predict    an image (multipart field `file`, or the raw body) -> the class index
                     mask as a palette PNG; ?overlay=1 the coloured overlay instead;
                     ?format=json per-class pixel shares and the image size (&mask=1 adds
                     the palette PNG, base64)
    GET  /info       classes, palette, model, input hints and limits
    GET  /healthz    liveness: answers while a prediction runs
    GET  /           a page: drop or pick an image, see the overlay beside it

Safe by default: it binds 127.0.0.1, caps upload bytes (413) and image pixels (413,
checked from the header: decompression bombs are refused), answers 415 for a file that is
not an image, and lets at most `max_waiting` requests wait (503 beyond). Decoding and
inference run in one worker thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from semseg.data.io import read_image
from semseg.deploy.batching import InferenceWorker, batch_size_that_pays
from semseg.engine.predictor import Predictor
from semseg.errors import DataProblem, SemsegError
from semseg.viz import overlay

try:
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.responses import HTMLResponse, Response
    from fastapi.staticfiles import StaticFiles
except ImportError:
    raise SemsegError("semseg serve needs its extra: pip install 'semseg[serve]'") from None

STATIC = resources.files("semseg.deploy") / "static"


@dataclass(frozen=True)
class ServeLimits:
    max_upload_bytes: int = 20 * 2**20
    max_pixels: int = 40_000_000
    max_waiting: int = 8  # requests decoding or predicting, or queued for it
    max_batch: int | None = None  # images of one size per forward pass; None: measure


class BodyLimit:
    """ASGI middleware: a request body over `max_bytes` gets 413 before it is read
    whole (by its Content-Length, or while it streams in)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _send_413(send, self.max_bytes)
            return
        received = 0
        too_large = False

        async def limited() -> dict:
            # Past the cap the app is told the client left, and whatever it answers is
            # dropped: the 413 below is the answer.
            nonlocal received, too_large
            if too_large:
                return {"type": "http.disconnect"}
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                too_large = True
                return {"type": "http.disconnect"}
            return message

        async def unless_too_large(message: dict) -> None:
            if not too_large:
                await send(message)

        try:
            await self.app(scope, limited, unless_too_large)
        except Exception:
            if not too_large:
                raise
        if too_large:
            await _send_413(send, self.max_bytes)


async def _send_413(send: Any, max_bytes: int) -> None:
    body = f'{{"detail": "upload larger than {max_bytes} bytes"}}'.encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def create_app(predictor: Predictor, source: str, limits: ServeLimits = ServeLimits()) -> Any:
    """The FastAPI application serving `predictor` (loaded from `source`)."""
    app = FastAPI(title="semseg", description=f"semantic segmentation with {source}")
    service = _Service(predictor, source, limits)

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/info")
    async def info() -> dict:
        return service.info()

    @app.post("/predict")
    async def predict(
        request: Request, format: str = "png", overlay: bool = False, mask: bool = False
    ):
        data = await _upload(request)
        result = await service.run(data)
        if format == "json":
            return service.shares(result, include_mask=mask)
        png = service.overlay_png(result) if overlay else service.mask_png(result)
        return Response(png, media_type="image/png")

    @app.get("/")
    async def page():
        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    return BodyLimit(app, limits.max_upload_bytes)


@dataclass
class _Prediction:
    image: np.ndarray  # H x W x 3 uint8
    mask: np.ndarray  # H x W class indices


class _Service:
    """The model behind the endpoints: one worker thread, a bounded waiting line."""

    def __init__(self, predictor: Predictor, source: str, limits: ServeLimits) -> None:
        self.predictor = predictor
        self.source = source
        self.limits = limits
        # Decoding the next request overlaps predicting the last ones.
        self.decoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="semseg-decode")
        max_batch = limits.max_batch or batch_size_that_pays(predictor)
        self.worker = InferenceWorker(predictor, max_batch)
        self.waiting = 0
        classes = predictor.classes
        self.palette = np.asarray(classes.color_table(), dtype=np.uint8).reshape(-1).tolist()

    async def run(self, data: bytes) -> _Prediction:
        if self.waiting >= self.limits.max_waiting:
            raise HTTPException(503, "busy: too many requests waiting; retry shortly")
        self.waiting += 1
        try:
            loop = asyncio.get_running_loop()
            image = await loop.run_in_executor(self.decoder, self._decode, data)
            mask = await asyncio.wrap_future(self.worker.submit(image))
            return _Prediction(image, mask)
        except DataProblem as problem:
            status = 413 if problem.kind == "image too large" else 415
            raise HTTPException(status, problem.detail) from None
        finally:
            self.waiting -= 1

    def _decode(self, data: bytes) -> np.ndarray:
        # RGB always: the predictor converts to gray for a gray model itself.
        pixels = read_image(Path("upload"), max_pixels=self.limits.max_pixels, data=data)
        return pixels.permute(1, 2, 0).numpy()

    def info(self) -> dict[str, Any]:
        classes = self.predictor.classes
        data = self.predictor.config.data
        mean, std = data.normalization()
        return {
            "model": self.source,
            "architecture": self.predictor.config.model.name,
            "classes": list(classes.names),
            "palette": [list(colour) for colour in classes.palette],
            "ignore_index": classes.ignore_index,
            "inference": self.predictor.inference.describe(),
            "input": {
                "channels": "gray" if data.image_mode == "gray" else "RGB",
                "mean": list(mean),
                "std": list(std),
                "any_size": True,
                "trained_on_crops_of": data.crop_size,
            },
            "limits": {
                "max_upload_bytes": self.limits.max_upload_bytes,
                "max_pixels": self.limits.max_pixels,
                "max_waiting": self.limits.max_waiting,
                "max_batch": self.worker.max_batch,
            },
        }

    def mask_png(self, result: _Prediction) -> bytes:
        image = Image.fromarray(result.mask.astype(np.uint8), mode="P")
        image.putpalette(self.palette)
        return _png(image)

    def overlay_png(self, result: _Prediction) -> bytes:
        return _png(Image.fromarray(overlay(result.image, result.mask, self.predictor.classes)))

    def shares(self, result: _Prediction, include_mask: bool) -> dict[str, Any]:
        classes = self.predictor.classes
        counts = np.bincount(result.mask.reshape(-1), minlength=classes.num_classes)
        total = int(counts.sum())
        answer: dict[str, Any] = {
            "width": int(result.mask.shape[1]),
            "height": int(result.mask.shape[0]),
            "classes": [
                {
                    "index": index,
                    "name": name,
                    "colour": list(classes.palette[index]),
                    "pixels": int(counts[index]),
                    "share": counts[index] / total if total else 0.0,
                }
                for index, name in enumerate(classes.names)
            ],
        }
        if include_mask:
            answer["mask_png"] = base64.b64encode(self.mask_png(result)).decode()
        return answer


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


async def _upload(request: Request) -> bytes:
    """The image bytes: the multipart field `file` (a browser form), or the raw body."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise HTTPException(422, "multipart upload needs a file field named 'file'")
        return await upload.read()
    body = await request.body()
    if not body:
        raise HTTPException(422, "no image: send it as the body or as field 'file'")
    return body


def run_server(app: Any, host: str, port: int) -> None:
    """Run `app` with uvicorn until interrupted."""
    try:
        import uvicorn
    except ImportError:
        raise SemsegError("semseg serve needs its extra: pip install 'semseg[serve]'") from None
    from semseg.console import console

    console.print(f"serving on http://{host}:{port}/ (Ctrl+C stops)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
