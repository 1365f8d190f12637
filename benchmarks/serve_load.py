"""`semseg serve` under load on loopback: p50/p95 latency and images/s at concurrency 1
and 8 (bounded: --requests each), against `Predictor.predict` called in a loop in the
same process on the same image. Goal: at concurrency 8 the server delivers at least
90 % of the in-process images/s. Prints JSON.

    python benchmarks/serve_load.py                        # lraspp, random weights
    python benchmarks/serve_load.py --model runs/camvid/best.pt --image photo.png

The uploaded image is a JPEG (quality 90) of --image, or of a synthetic 360x480 scene:
photos, not noise (noise decodes slower and compresses badly, which no upload does).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from onnx_speed import random_checkpoint
from PIL import Image
from results import publish

import semseg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="checkpoint, folder or ONNX file")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--image", type=Path, help="a photo to upload (as JPEG)")
    parser.add_argument("--max-batch", type=int, help="the server's --max-batch")
    args = parser.parse_args()
    pixels = np.array(Image.open(args.image).convert("RGB")) if args.image else _scene()
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    with tempfile.TemporaryDirectory() as folder:
        model = args.model or random_checkpoint(Path(folder), "lraspp", ["model.name=lraspp"])
        in_process = _in_process(model, pixels, min(args.requests, 50))
        results = _against_server(model, buffer.getvalue(), args.requests, args.max_batch)
    at_8 = results["concurrency_8"]["images_per_s"]
    publish(
        "serve_load",
        {
            "model": str(args.model or "lraspp (random weights)"),
            "image": f"{pixels.shape[0]}x{pixels.shape[1]}, {len(buffer.getvalue())} B JPEG",
            "requests_per_level": args.requests,
            "in_process_images_per_s": in_process,
            **results,
            "server_share_of_in_process_at_8": round(at_8 / in_process, 3),
            "cpu_count": os.cpu_count(),
        },
    )


def _in_process(model: Path, pixels: np.ndarray, count: int) -> float:
    predictor = semseg.load(model, device="cpu")
    predictor.predict(pixels)  # warm-up
    start = time.perf_counter()
    for _ in range(count):
        predictor.predict(pixels)
    return round(count / (time.perf_counter() - start), 2)


def _scene(height: int = 360, width: int = 480) -> np.ndarray:
    """Sky, road and a few blocks with smooth shading: compresses as a photo does."""
    rows = np.linspace(0, 1, height)[:, None]
    image = np.empty((height, width, 3))
    image[:] = (0.3 + 0.5 * rows)[..., None] * np.array([120, 140, 200]) / 0.8
    image[height // 2 :] = np.array([90, 90, 95]) * (0.8 + 0.3 * rows[height // 2 :])[..., None]
    for left in range(20, width, 120):
        image[120:260, left : left + 70] = np.array([150, 110, 80])
    noise = np.random.default_rng(0).normal(0, 4, image.shape)
    return (image + noise).clip(0, 255).astype(np.uint8)


def _against_server(model: Path, image: bytes, requests: int, max_batch: int | None) -> dict:
    port = _free_port()
    command = [sys.executable, "-m", "semseg", "serve", str(model), "--port", str(port)]
    command += ["--device", "cpu", "--max-waiting", "64"]
    if max_batch:
        command += ["--max-batch", str(max_batch)]
    server = subprocess.Popen(command)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_for(url + "/healthz")
        httpx.post(url + "/predict", content=image, timeout=120)  # warm-up
        return {
            f"concurrency_{level}": asyncio.run(_load(url, image, requests, level))
            for level in (1, 8)
        }
    finally:
        server.terminate()
        server.wait(30)


async def _load(url: str, image: bytes, requests: int, concurrency: int) -> dict:
    latencies: list[float] = []
    queue = asyncio.Queue()
    for _ in range(requests):
        queue.put_nowait(None)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            queue.get_nowait()
            start = time.perf_counter()
            response = await client.post(url + "/predict", content=image)
            response.raise_for_status()
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    async with httpx.AsyncClient(timeout=300) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    ordered = sorted(latencies)
    return {
        "images_per_s": round(len(latencies) / elapsed, 2),
        "p50_ms": round(1000 * statistics.median(ordered), 1),
        "p95_ms": round(1000 * ordered[int(0.95 * (len(ordered) - 1))], 1),
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(url: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not answer within {seconds} s")


if __name__ == "__main__":
    main()
