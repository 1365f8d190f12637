"""What the eval and predict commands do, as functions the CLI and tests call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from semseg.config import Config, load_config
from semseg.console import class_table, console, progress_bar, summary_line
from semseg.data import eval_dataset, make_loader
from semseg.data.io import IMAGE_EXTENSIONS
from semseg.data.registry import val_split_name
from semseg.engine.checkpoint import checkpoint_classes, load_checkpoint, model_from_checkpoint
from semseg.engine.evaluate import evaluate
from semseg.engine.predictor import load, to_image_tensor
from semseg.engine.rundir import write_json
from semseg.engine.runtime import resolve_device
from semseg.errors import SemsegError
from semseg.viz import overlay


def evaluation_config(
    checkpoint: dict[str, Any], config_file: Path | None, overrides: list[str]
) -> Config:
    """The checkpoint's own config, then a config file, then overrides (e.g. data.root)."""
    return load_config(config_file, overrides, base=checkpoint["config"])


def run_eval(
    checkpoint_path: Path,
    config_file: Path | None = None,
    overrides: list[str] | None = None,
    split: str | None = None,
    out: Path | None = None,
) -> dict[str, Any]:
    """Evaluate a checkpoint on a split (default: the validation split); print the per-class
    table and write the JSON summary (default: eval.json beside the checkpoint)."""
    payload = load_checkpoint(checkpoint_path)
    config = evaluation_config(payload, config_file, overrides or [])
    classes = checkpoint_classes(payload)
    dataset = eval_dataset(config.data, split)
    if dataset.classes.names != classes.names:
        raise SemsegError(
            f"{checkpoint_path}: model classes {list(classes.names)} differ from the dataset's "
            f"{list(dataset.classes.names)}; evaluate on data with the model's classes"
        )
    device = resolve_device(config.train.device)
    model = model_from_checkpoint(payload, checkpoint_path).to(device)
    loader = make_loader(dataset, config.data, config.eval.batch_size, shuffle=False)
    split_name = split or val_split_name(config.data)
    result = evaluate(model, loader, classes.num_classes, classes.ignore_index, device)
    metrics = result.confusion.compute()
    console.print(class_table(metrics, classes.names, f"{checkpoint_path} on {split_name}"))
    console.print(summary_line(metrics))
    summary = {
        "checkpoint": str(checkpoint_path),
        "split": split_name,
        "images": len(dataset),
        "dataset_fingerprint": dataset.fingerprint(),
        "class_names": list(classes.names),
        "metrics": metrics,
        "nan_rule": "null marks a class absent from both ground truth and prediction; "
        "it is left out of the means",
    }
    out = out or Path(checkpoint_path).with_name("eval.json")
    write_json(out, summary)
    console.print(f"wrote {out}")
    return summary


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


def run_predict(
    checkpoint_path: Path,
    inputs: list[Path],
    out_dir: Path,
    overlays: bool = True,
    device: str | None = None,
) -> list[Path]:
    """Write OUT/NAME.png (palette PNG of class indices) and OUT/NAME_overlay.png."""
    predictor = load(checkpoint_path, device=device)
    files = expand_inputs(inputs)
    classes = predictor.classes
    if classes.num_classes > 256:
        raise SemsegError(f"{checkpoint_path}: {classes.num_classes} classes do not fit a PNG")
    out_dir.mkdir(parents=True, exist_ok=True)
    flat_palette = np.asarray(classes.color_table(), dtype=np.uint8).reshape(-1).tolist()
    written = []
    with progress_bar() as progress:
        task = progress.add_task("predict", total=len(files), info="")
        for path in files:
            image = to_image_tensor(path).permute(1, 2, 0).numpy()  # RGB, EXIF applied
            mask = predictor.predict(image)
            index_png = Image.fromarray(mask.astype(np.uint8), mode="P")
            index_png.putpalette(flat_palette)
            target = out_dir / f"{path.stem}.png"
            index_png.save(target)
            written.append(target)
            if overlays:
                blended = overlay(image, mask, classes)
                Image.fromarray(blended).save(out_dir / f"{path.stem}_overlay.png")
            progress.advance(task)
    console.print(f"wrote {len(written)} mask(s) to {out_dir}")
    return written
