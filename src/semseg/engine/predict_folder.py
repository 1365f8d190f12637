"""`semseg.predict_folder`: masks for image files and folders, written as palette PNGs
(pixel values are class indices; viewers show the class colours) and colour overlays."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from semseg.console import console, progress_bar
from semseg.data.io import IMAGE_EXTENSIONS
from semseg.engine.distributed import join_world
from semseg.engine.inference import InferenceSettings
from semseg.engine.predictor import Predictor, load, to_image_tensor
from semseg.errors import SemsegError
from semseg.files import atomic_write, check_output_folder
from semseg.viz import overlay


def predict_folder(
    checkpoint: Path | str,
    inputs: list[Path | str],
    out_dir: Path | str,
    overlays: bool = True,
    device: str | None = None,
    eval_overrides: dict[str, Any] | None = None,
) -> list[Path]:
    """Predict every image given and write OUT/NAME.png (+ OUT/NAME_overlay.png).

    Args:
        checkpoint: a semseg checkpoint, e.g. runs/NAME/best.pt.
        inputs: image files, and folders whose images are all taken (sorted).
        out_dir: the output folder (created).
        overlays: also write the colour overlay of each mask on its image.
        device: cpu, cuda, ...; default: CUDA when available.
        eval_overrides: eval.* keys replacing the checkpoint's inference settings, e.g.
            `{"flip": True, "scales": [0.75, 1, 1.25]}` or `{"mode": "slide", ...}`.

    Under torchrun the files are split across the processes (every size-th file from
    the rank on), each process writes its own, and rank 0 prints the total.

    Returns:
        The mask files written (by this process), in input order.

    Raises:
        SemsegError: a missing input, a folder without images, an unreadable image, or
            more classes than a palette PNG holds (256).
    """
    out_dir = check_output_folder(out_dir, "--out")
    world, device_used = join_world(device or "auto")
    predictor = load(checkpoint, device=str(device_used))
    if eval_overrides:
        settings = predictor.config.eval.model_copy(update=eval_overrides)
        amp = predictor.inference.amp_dtype  # the model's own (none for an ONNX file)
        predictor.inference = replace(
            InferenceSettings.from_config(
                settings, predictor.device, predictor.config.data.normalization()
            ),
            amp_dtype=amp,
        )
    files = expand_inputs([Path(item) for item in inputs])[world.rank :: world.size]
    classes = predictor.classes
    if classes.num_classes > 256:
        raise SemsegError(f"{checkpoint}: {classes.num_classes} classes do not fit a PNG")
    written = []
    with progress_bar() as progress:
        task = progress.add_task("predict", total=len(files), info="")
        for path in files:
            written.append(_predict_file(predictor, path, out_dir, overlays))
            progress.advance(task)
    total = int(world.sum(len(written)))
    console.print(f"wrote {total} mask(s) to {out_dir}")
    return written


def _predict_file(predictor: Predictor, path: Path, out_dir: Path, overlays: bool) -> Path:
    """OUT/NAME.png (palette PNG of class indices) and OUT/NAME_overlay.png for one image."""
    pixels = to_image_tensor(path, max_pixels=predictor.config.data.max_pixels)
    image = pixels.permute(1, 2, 0).numpy()  # RGB, EXIF applied
    mask = predictor.predict(image)
    classes = predictor.classes
    index_png = Image.fromarray(mask.astype(np.uint8), mode="P")
    index_png.putpalette(np.asarray(classes.color_table(), dtype=np.uint8).reshape(-1).tolist())
    target = out_dir / f"{path.stem}.png"
    _save_png(index_png, target)
    if overlays:
        blended = Image.fromarray(overlay(image, mask, classes))
        _save_png(blended, out_dir / f"{path.stem}_overlay.png")
    return target


def _save_png(image: Image.Image, path: Path) -> None:
    atomic_write(path, lambda file: image.save(file, format="PNG"))


def expand_inputs(inputs: list[Path]) -> list[Path]:
    """Files as given; folders contribute their images (sorted)."""
    files: list[Path] = []
    for item in inputs:
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                raise SemsegError(f"{item}: folder holds no images ({', '.join(IMAGE_EXTENSIONS)})")
            files.extend(found)
        elif item.is_file():
            files.append(item)
        else:
            raise SemsegError(f"{item}: no such file or folder; check the input paths")
    return files
