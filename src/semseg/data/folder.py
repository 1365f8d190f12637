"""`folder`: a user's own images and masks.

    ROOT/images/NAME.jpg          any common image format (data.image_dir)
    ROOT/masks/NAME[SUFFIX].png   one class index per pixel, 255 = ignore (data.mask_dir,
                                  data.mask_suffix, e.g. "_mask" for 0001_mask.png)
    ROOT/classes.yaml             names: [...], optional palette: [[r,g,b], ...], ignore_index
    ROOT/train.txt, ROOT/val.txt  optional (also ROOT/splits/*.txt), one NAME per line

Without split lists, a seeded random `val_ratio` share of the samples is held out for
validation. Mask encodings: index PNGs (8- or 16-bit), RGB colours mapped through the
palette (`data.mask_encoding=rgb`), any remapping with `data.value_map`.

Binary masks: with exactly two classes and no `ignore_index` in classes.yaml, value 255 is
read as class 1 (foreground), so masks saved as 0/255 by most labelling tools work as they
are. Writing `ignore_index: 255` in classes.yaml (or data.binary_255=false) keeps 255 as
ignore.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from semseg.classes import ClassSet
from semseg.config import DataConfig
from semseg.data.base import FileDataset
from semseg.data.io import IMAGE_EXTENSIONS, MASK_EXTENSIONS
from semseg.data.labels import LabelDecoder
from semseg.data.listing import (
    dataset_root,
    files_by_stem,
    masks_without_images,
    read_name_list,
    require_dir,
    samples_from_names,
)
from semseg.data.registry import register_format, train_split_name, val_split_name
from semseg.errors import DataProblem, SemsegError


@register_format("folder")
def read_folder(data: DataConfig, split: str) -> FileDataset:
    root = dataset_root(data)
    classes_file = data.classes or root / "classes.yaml"
    classes = ClassSet.from_yaml(classes_file)
    hint = "the folder format expects images/ and masks/ (or set data.image_dir, data.mask_dir)"
    image_dir = require_dir(root / data.image_dir, hint)
    mask_dir = require_dir(root / data.mask_dir, hint)
    images, problems = files_by_stem(image_dir, IMAGE_EXTENSIONS)
    masks, mask_problems = files_by_stem(mask_dir, MASK_EXTENSIONS)
    names = _split_names(root, data, split, sorted(images))

    def mask_for(name: str) -> Path:
        stem = name + data.mask_suffix
        return masks.get(stem, mask_dir / f"{stem}.png")

    samples, missing = samples_from_names(
        names, images.get, mask_for, "add it, or set data.mask_dir / data.mask_suffix"
    )
    problems += mask_problems + missing
    problems += masks_without_images(masks, images, image_dir, data.mask_suffix)
    problems += _unlisted_images_without_masks(root, data, images, masks)
    decoder = folder_decoder(data, classes, _declares_ignore(classes_file))
    return FileDataset(samples, classes, decoder, data.image_mode == "gray", problems)


def _unlisted_images_without_masks(
    root: Path, data: DataConfig, images: dict[str, Path], masks: dict[str, Path]
) -> list[DataProblem]:
    """With split lists, warnings for images that no list names and that have no mask:
    nothing reads them, which usually means a forgotten mask or list entry."""
    lists = [split_list_path(root, split) for split in _known_splits(root, data)]
    lists = [path for path in lists if path.is_file()]
    if not lists:
        return []
    listed = {name for path in lists for name in read_name_list(path)}
    return [
        DataProblem(
            path,
            "image without mask",
            f"no split list names {stem!r} and it has no mask: it is not used; add its mask "
            "and list it, or remove it",
            warning=True,
        )
        for stem, path in images.items()
        if stem not in listed and stem + data.mask_suffix not in masks
    ]


def _known_splits(root: Path, data: DataConfig) -> set[str]:
    """The config's train and val splits, test, and any list in ROOT/splits/."""
    found = {train_split_name(data), val_split_name(data), "test"}
    if (root / "splits").is_dir():
        found |= {path.stem for path in (root / "splits").glob("*.txt")}
    return found


def folder_decoder(data: DataConfig, classes: ClassSet, declares_ignore: bool) -> LabelDecoder:
    binary_255 = data.binary_255
    if binary_255 is None:
        binary_255 = classes.num_classes == 2 and not declares_ignore
    value_map = dict(data.value_map or {})
    if binary_255 and data.mask_encoding == "index":
        value_map.setdefault(255, 1)
    return LabelDecoder(classes, value_map, rgb=data.mask_encoding == "rgb")


def _declares_ignore(classes_file: Path) -> bool:
    """Whether classes.yaml states ignore_index itself (it parsed already, so it is valid)."""
    return "ignore_index" in (yaml.safe_load(classes_file.read_text()) or {})


def split_list_path(root: Path, split: str) -> Path:
    for candidate in (root / f"{split}.txt", root / "splits" / f"{split}.txt"):
        if candidate.is_file():
            return candidate
    return root / f"{split}.txt"


def _split_names(root: Path, data: DataConfig, split: str, all_names: list[str]) -> list[str]:
    listed = split_list_path(root, split)
    if listed.is_file():
        return read_name_list(listed)
    train, val = train_split_name(data), val_split_name(data)
    if split not in (train, val):
        raise SemsegError(f"{listed}: split list not found; write one sample name per line")
    # No lists: a seeded shuffle holds out `val_ratio` of the samples for validation.
    order = np.random.default_rng(data.split_seed).permutation(len(all_names))
    num_val = max(1, round(len(all_names) * data.val_ratio)) if all_names else 0
    chosen = order[:num_val] if split == val else order[num_val:]
    return [all_names[i] for i in sorted(chosen)]
