"""Draw the pictures docs/pictures.md shows, with semseg's own commands, into docs/img/.

    python docs/make_pictures.py RUN_DIR --root ../shared/data/camvid

RUN_DIR is a CamVid training run (e.g. of configs/camvid_realtime.yaml): its curves.png
is copied; the samples figure, the evaluation report, a prediction and a data preview
are drawn from its best.pt; the server page is photographed when Playwright and
Chromium are installed.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from PIL import Image

import semseg
from semseg.data import eval_dataset
from semseg.engine.train import spread_indices
from semseg.viz import save_samples_figure

IMG = Path(__file__).resolve().parent / "img"
MAX_WIDTH = 1400  # pixels: enough for a docs page, small enough for the repository


def semseg_command(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "semseg", *args], check=True)


def keep(source: Path, name: str) -> None:
    """Copy a picture into docs/img, downscaled to MAX_WIDTH and re-compressed."""
    image = Image.open(source)
    if image.width > MAX_WIDTH:
        height = round(image.height * MAX_WIDTH / image.width)
        image = image.convert("RGB").resize((MAX_WIDTH, height), Image.Resampling.LANCZOS)
    image.save(IMG / name, optimize=True)
    print(f"docs/img/{name}: {image.width}x{image.height}")


def samples_figure(checkpoint: Path, root: str, out: Path) -> None:
    """samples.png as training draws it: val examples spread over the split."""
    predictor = semseg.load(checkpoint)
    data = semseg.load_config(None, ["data.format=camvid", f"data.root={root}"]).data
    dataset = eval_dataset(data)
    indices = spread_indices(4, len(dataset))
    rows = []
    # Through predictor.predict rather than engine.evaluate.sample_predictions: this
    # dataset normalises by the bare CamVid config, the predictor by its checkpoint's.
    for index in indices:
        image, truth = dataset.load(index)
        pixels = image.permute(1, 2, 0).numpy()
        rows.append((pixels, truth.numpy(), predictor.predict(pixels)))
    names = [dataset.sample_name(index) for index in indices]
    save_samples_figure(out, rows, predictor.classes, names)


def server_page(model: Path, photo: Path, out: Path) -> bool:
    """A screenshot of `semseg serve`'s page after dropping a photo on it."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return False
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "semseg", "serve", str(model), "--port", str(port)]
    )
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=shutil.which("chromium"), args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": 1100, "height": 760})
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_function(
                "document.getElementById('model').textContent.includes('classes')"
            )
            page.set_input_files("#file", str(photo))
            page.wait_for_selector("#result:not([hidden])", timeout=60_000)
            page.wait_for_timeout(500)  # the overlay image finishes loading
            page.screenshot(path=str(out), full_page=True)
            browser.close()
    finally:
        server.terminate()
        server.wait()
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a CamVid run folder")
    parser.add_argument("--root", default="../shared/data/camvid")
    args = parser.parse_args()
    checkpoint = args.run / "best.pt"
    photo = sorted(Path(args.root, "test", "images").iterdir())[120]
    IMG.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        keep(args.run / "curves.png", "curves.png")
        samples_figure(checkpoint, args.root, work / "samples.png")
        keep(work / "samples.png", "samples.png")
        semseg_command("predict", str(checkpoint), str(photo), "--out", str(work / "pred"))
        keep(work / "pred" / f"{photo.stem}_overlay.png", "overlay.png")
        keep(work / "pred" / f"{photo.stem}.png", "mask.png")
        semseg_command(
            "eval", str(checkpoint), "--split", "test", f"data.root={args.root}",
            "--report", str(work / "report"), "--out", str(work / "eval.json"),
        )  # fmt: skip
        for name in ("confusion.png", "iou.png", "image_miou.png", "worst.png"):
            keep(work / "report" / name, f"report_{name}")
        semseg_command(
            "data", "preview", "data.format=camvid", f"data.root={args.root}",
            "data.augment_preset=driving", "--out", str(work / "preview.png"),
        )  # fmt: skip
        keep(work / "preview.png", "preview.png")
        if server_page(checkpoint, photo, work / "page.png"):
            keep(work / "page.png", "server_page.png")


if __name__ == "__main__":
    main()
