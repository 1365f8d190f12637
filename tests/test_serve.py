"""The prediction server: every endpoint and status code through a test client (an
oversized upload, a decompression bomb, a non-image, a full waiting line), /healthz
answering while a prediction runs, and the page in headless Chromium."""

from __future__ import annotations

import asyncio
import base64
import io
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import semseg
from conftest import TINY_OVERRIDES
from helpers import write_png_header

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from semseg.deploy.server import ServeLimits, create_app  # noqa: E402


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("runs")
    overrides = [*TINY_OVERRIDES, "train.epochs=1", f"train.output_dir={output}"]
    return semseg.train(semseg.load_config(None, overrides)).run_dir / "best.pt"


def png_bytes(height: int = 30, width: int = 44, seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def client(checkpoint: Path, **limits) -> TestClient:
    predictor = semseg.load(checkpoint, device="cpu")
    return TestClient(create_app(predictor, str(checkpoint), ServeLimits(**limits)))


def test_predict_returns_masks_overlays_and_shares(checkpoint: Path) -> None:
    api = client(checkpoint)
    assert api.get("/healthz").json() == {"status": "ok"}
    info = api.get("/info").json()
    assert info["classes"] == ["background", "circle", "square", "triangle", "cross"]
    assert info["limits"]["max_upload_bytes"] == 20 * 2**20
    image = png_bytes()
    expected = semseg.load(checkpoint, device="cpu").predict(
        np.array(Image.open(io.BytesIO(image)))
    )

    raw = api.post("/predict", content=image)
    assert raw.status_code == 200 and raw.headers["content-type"] == "image/png"
    mask = Image.open(io.BytesIO(raw.content))
    assert mask.mode == "P" and np.array_equal(np.array(mask), expected)
    form = api.post("/predict", files={"file": ("photo.png", image, "image/png")})
    assert np.array_equal(np.array(Image.open(io.BytesIO(form.content))), expected)

    overlay = Image.open(io.BytesIO(api.post("/predict?overlay=1", content=image).content))
    assert overlay.mode == "RGB" and overlay.size == (44, 30)
    shares = api.post("/predict?format=json&mask=1", content=image).json()
    assert (shares["width"], shares["height"]) == (44, 30)
    assert abs(sum(entry["share"] for entry in shares["classes"]) - 1) < 1e-9
    assert shares["classes"][1]["pixels"] == int((expected == 1).sum())
    embedded = Image.open(io.BytesIO(base64.b64decode(shares["mask_png"])))
    assert np.array_equal(np.array(embedded), expected)


def test_bad_uploads_get_their_status_codes(checkpoint: Path, tmp_path: Path) -> None:
    api = client(checkpoint, max_upload_bytes=5000, max_pixels=100_000)
    big = png_bytes(200, 200)  # about 120 kB of noise
    assert api.post("/predict", content=big).status_code == 413
    chunks = (big[i : i + 1000] for i in range(0, len(big), 1000))  # no Content-Length
    assert api.post("/predict", content=chunks).status_code == 413
    write_png_header(tmp_path / "bomb.png", 30000, 30000)
    bomb = api.post("/predict", content=(tmp_path / "bomb.png").read_bytes())
    assert bomb.status_code == 413 and "pixels" in bomb.json()["detail"]
    text = api.post("/predict", content=b"just some text, not a picture")
    assert text.status_code == 415 and "cannot decode image" in text.json()["detail"]
    assert api.post("/predict").status_code == 422
    assert api.post("/predict", files={"other": ("a.txt", b"x")}).status_code == 422


def test_a_full_waiting_line_answers_503_and_healthz_stays_responsive(
    checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    predictor = semseg.load(checkpoint, device="cpu")
    started, release = threading.Event(), threading.Event()
    real_predict = predictor.predict

    def slow_predict(image, *args, **kwargs):
        started.set()
        release.wait(10)
        return real_predict(image, *args, **kwargs)

    monkeypatch.setattr(predictor, "predict", slow_predict)
    app = create_app(predictor, str(checkpoint), ServeLimits(max_waiting=1, max_batch=1))

    async def scenario() -> tuple[int, int, float]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as api:
            busy = asyncio.create_task(api.post("/predict", content=png_bytes()))
            while not started.is_set():
                await asyncio.sleep(0.01)
            began = time.monotonic()
            health = await api.get("/healthz")
            answered_in = time.monotonic() - began
            refused = await api.post("/predict", content=png_bytes())
            release.set()
            return (await busy).status_code, refused.status_code, answered_in, health.status_code

    done, refused, answered_in, health = asyncio.run(scenario())
    assert done == 200 and refused == 503 and health == 200 and answered_in < 2


def test_concurrent_requests_of_one_size_are_predicted_as_one_batch(
    checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    predictor = semseg.load(checkpoint, device="cpu")
    started, release = threading.Event(), threading.Event()
    real_predict, real_batch = predictor.predict, predictor.predict_batch
    batches = []

    def first_waits(image, *args, **kwargs):
        started.set()
        release.wait(10)
        return real_predict(image, *args, **kwargs)

    def counting_batch(images):
        batches.append(len(images))
        return real_batch(images)

    app = create_app(predictor, str(checkpoint), ServeLimits(max_batch=4))
    monkeypatch.setattr(predictor, "predict", first_waits)
    monkeypatch.setattr(predictor, "predict_batch", counting_batch)
    images = [png_bytes(seed=seed) for seed in range(4)]

    async def scenario() -> list:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as api:
            first = asyncio.create_task(api.post("/predict", content=images[0]))
            while not started.is_set():
                await asyncio.sleep(0.01)
            rest = [asyncio.create_task(api.post("/predict", content=i)) for i in images[1:]]
            await asyncio.sleep(0.5)  # the three wait in the queue
            release.set()
            return [await task for task in (first, *rest)]

    responses = asyncio.run(scenario())
    assert batches == [3]
    for image, response in zip(images, responses, strict=True):
        expected = real_predict(np.array(Image.open(io.BytesIO(image))))
        assert np.array_equal(np.array(Image.open(io.BytesIO(response.content))), expected)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_the_page_shows_the_overlay_and_legend_in_headless_chromium(
    checkpoint: Path, tmp_path: Path
) -> None:
    """A person's path: open the page, pick an image, see the overlay and the legend."""
    browser = _chromium()
    if browser is None:
        pytest.skip("headless Chromium not installed (apt-get install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "semseg",
            "serve",
            str(checkpoint),
            "--port",
            str(port),
            "--device",
            "cpu",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/healthz")
        photo = tmp_path / "photo.png"
        photo.write_bytes(png_bytes(48, 64))
        with playwright.sync_playwright() as driver:
            chromium = driver.chromium.launch(
                executable_path=browser,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            page = chromium.new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_function(
                "document.getElementById('model').textContent.includes('classes')"
            )
            page.set_input_files("#file", str(photo))
            page.wait_for_selector("#result:not([hidden])", timeout=30_000)
            mask_source = page.get_attribute("#mask", "src")
            legend = page.inner_text("#legend")
            page.fill("#opacity", "25")
            page.dispatch_event("#opacity", "input")
            opacity = page.eval_on_selector("#mask", "element => element.style.opacity")
            natural = page.eval_on_selector(
                "#mask", "element => [element.naturalWidth, element.naturalHeight]"
            )
            chromium.close()
    finally:
        server.terminate()
        server.wait(10)
    assert mask_source.startswith("data:image/png;base64,") and natural == [64, 48]
    for name in ("background", "circle", "square", "triangle", "cross"):
        assert name in legend
    assert "%" in legend and opacity == "0.25"


def _wait_for(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {seconds} s")
