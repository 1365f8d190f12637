"""`semseg data convert`: any readable dataset -> the `folder` layout.

Images are copied byte for byte (shapes, generated in memory, are written as PNG); masks
are written as palette PNGs of decoded class indices (ignore stays ignore_index), so RGB
colour masks, 16-bit masks, trimaps, label ids and COCO polygons all become plain index
masks. The output is built in a temporary folder and renamed into place when complete.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from semseg.config import DataConfig
from semseg.console import track
from semseg.data.base import FileDataset
from semseg.data.registry import read_split, train_split_name, val_split_name
from semseg.errors import SemsegError
from semseg.files import check_output_folder


def convert_to_folder(data: DataConfig, out: Path, splits: Sequence[str] | None = None) -> dict:
    """Write OUT/images, OUT/masks, OUT/classes.yaml and one OUT/SPLIT.txt per split (the
    training split as train.txt, the validation split as val.txt)."""
    check_output_folder(out, "--out")
    if out.exists() and any(out.iterdir()):
        raise SemsegError(f"{out}: output folder exists and is not empty; choose a new --out")
    train, val = train_split_name(data), val_split_name(data)
    splits = list(splits or (train, val))
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        counts = _write(data, staging, splits, train, val)
        if out.exists():
            out.rmdir()
        staging.rename(out)
    except OSError as error:  # e.g. a full disk: nothing half-written stays behind
        shutil.rmtree(staging, ignore_errors=True)
        raise SemsegError(
            f"{out}: could not write the dataset ({error}); nothing was kept"
        ) from error
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return counts


def _write(data: DataConfig, root: Path, splits: list[str], train: str, val: str) -> dict:
    (root / "images").mkdir()
    (root / "masks").mkdir()
    counts, seen, classes = {}, set(), None
    for split in splits:
        dataset = read_split(data, split)
        classes = dataset.classes
        palette = classes.color_table().reshape(-1).tolist()
        names = []
        for index in track(range(len(dataset)), f"converting {split}"):
            name = dataset.sample_name(index)
            if name in seen:
                raise SemsegError(
                    f"sample {name!r} is in two splits; the folder layout needs "
                    "unique names (run 'semseg data check')"
                )
            seen.add(name)
            image, labels = dataset.load(index)
            _write_image(dataset, index, image.permute(1, 2, 0).numpy(), root / "images", name)
            mask = Image.fromarray(labels.numpy().astype(np.uint8), mode="P")
            mask.putpalette(palette)
            mask.save(root / "masks" / f"{name}.png")
            names.append(name)
        list_name = {train: "train", val: "val"}.get(split, split)
        (root / f"{list_name}.txt").write_text("".join(f"{n}\n" for n in names))
        counts[list_name] = len(names)
    # ignore_index is written explicitly: a two-class dataset then keeps 255 as ignore.
    (root / "classes.yaml").write_text(yaml.safe_dump(classes.to_dict(), sort_keys=False))
    return counts


def _write_image(dataset, index: int, pixels: np.ndarray, folder: Path, name: str) -> None:
    if isinstance(dataset, FileDataset):
        source = dataset.samples[index].image
        shutil.copyfile(source, folder / f"{name}{source.suffix.lower()}")
    else:
        Image.fromarray(pixels.squeeze(-1) if pixels.shape[-1] == 1 else pixels).save(
            folder / f"{name}.png"
        )
