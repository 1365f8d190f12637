"""`folder`: a user's own images and masks.

    ROOT/images/NAME.jpg   any common image format
    ROOT/masks/NAME.png    single-channel PNG, one class index per pixel, 255 = ignore
    ROOT/classes.yaml      names: [...], optional palette: [[r,g,b], ...], ignore_index
    ROOT/train.txt, ROOT/val.txt (or ROOT/splits/*.txt)   optional, one NAME per line

Images and masks are matched by file stem. Without split lists, a seeded random
`val_ratio` share of the samples is held out for validation.

Binary masks: with exactly two classes, value 255 is read as class 1 (foreground), so
masks saved as 0/255 by most labelling tools work as they are (`data.binary_255`, default
on for two classes; turn it off to keep 255 as ignore in a two-class dataset).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from semseg.classes import ClassSet
from semseg.config import DataConfig
from semseg.data.base import SegmentationDataset
from semseg.data.io import IMAGE_EXTENSIONS, MASK_EXTENSIONS, read_image, read_mask
from semseg.errors import SemsegError


class FolderDataset(SegmentationDataset):
    def __init__(
        self, samples: list[tuple[Path, Path]], classes: ClassSet, binary_255: bool
    ) -> None:
        super().__init__(classes)
        self.samples = samples
        self.binary_255 = binary_255

    def __len__(self) -> int:
        return len(self.samples)

    def sample_name(self, index: int) -> str:
        return self.samples[index][0].stem

    def fingerprint(self) -> str:
        # Names and byte sizes: cheap for large datasets, and changes when files change.
        digest = hashlib.sha256()
        for image_path, mask_path in self.samples:
            for path in (image_path, mask_path):
                digest.update(f"{path.name}:{path.stat().st_size}\0".encode())
        return digest.hexdigest()[:16]

    def load(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image_path, mask_path = self.samples[index]
        image = read_image(image_path)
        mask = read_mask(mask_path)
        if mask.shape != tuple(image.shape[1:]):
            raise SemsegError(
                f"{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]} but its image "
                f"{image_path.name} is {image.shape[2]}x{image.shape[1]} (WxH); "
                "masks must have the image's size"
            )
        return image, torch.from_numpy(self._to_labels(mask, mask_path))

    def _to_labels(self, mask: np.ndarray, path: Path) -> np.ndarray:
        if self.binary_255:
            mask = np.where(mask == 255, 1, mask)
        classes = self.classes
        bad = (mask >= classes.num_classes) & (mask != classes.ignore_index)
        if bad.any():
            values = sorted(int(v) for v in np.unique(mask[bad]))[:8]
            raise SemsegError(
                f"{path}: mask values {values} are neither classes 0..{classes.num_classes - 1}"
                f" nor ignore ({classes.ignore_index}); fix the mask or the classes file"
            )
        return mask.astype(np.uint8)


def folder_split(data: DataConfig, split: str) -> FolderDataset:
    root = _require_root(data)
    classes = ClassSet.from_yaml(data.classes or root / "classes.yaml")
    binary_255 = data.binary_255 if data.binary_255 is not None else classes.num_classes == 2
    pairs = _match_pairs(root / data.image_dir, root / data.mask_dir)
    names = _split_names(root, data, split, sorted(pairs))
    missing = [name for name in names if name not in pairs]
    if missing:
        raise SemsegError(
            f"{_split_file(root, split)}: {len(missing)} listed name(s) have no image and mask "
            f"pair, e.g. {missing[0]!r}; fix the list or add the files"
        )
    if not names:
        raise SemsegError(f"{root}: split {split!r} is empty; add samples or adjust the split")
    return FolderDataset([pairs[name] for name in names], classes, binary_255)


def _require_root(data: DataConfig) -> Path:
    if data.root is None:
        raise SemsegError(
            f"config key 'data.root' is required for format {data.format!r}: "
            "set data.root=PATH/TO/DATASET"
        )
    if not data.root.is_dir():
        raise SemsegError(f"{data.root}: dataset folder not found; check data.root")
    return data.root


def _match_pairs(image_dir: Path, mask_dir: Path) -> dict[str, tuple[Path, Path]]:
    for folder in (image_dir, mask_dir):
        if not folder.is_dir():
            raise SemsegError(
                f"{folder}: folder not found; the folder format expects images/ and masks/ "
                "(set data.image_dir / data.mask_dir for other names)"
            )
    masks = {p.stem: p for p in mask_dir.iterdir() if p.suffix.lower() in MASK_EXTENSIONS}
    images = {p.stem: p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS}
    unmatched = sorted(set(images) - set(masks))
    if unmatched:
        raise SemsegError(
            f"{image_dir}: {len(unmatched)} image(s) have no mask in {mask_dir.name}/, e.g. "
            f"{images[unmatched[0]].name}; add masks named like the images (NAME.png)"
        )
    return {stem: (images[stem], masks[stem]) for stem in images}


def _split_file(root: Path, split: str) -> Path:
    for candidate in (root / f"{split}.txt", root / "splits" / f"{split}.txt"):
        if candidate.is_file():
            return candidate
    return root / f"{split}.txt"


def _split_names(root: Path, data: DataConfig, split: str, all_names: list[str]) -> list[str]:
    listed = _split_file(root, split)
    if listed.is_file():
        return [line.strip() for line in listed.read_text().splitlines() if line.strip()]
    if split not in (data.train_split, data.val_split):
        raise SemsegError(f"{listed}: split list not found; write one name per line")
    # No lists: a seeded shuffle holds out `val_ratio` of the samples for validation.
    order = np.random.default_rng(data.split_seed).permutation(len(all_names))
    num_val = max(1, round(len(all_names) * data.val_ratio))
    chosen = order[:num_val] if split == data.val_split else order[num_val:]
    return [all_names[i] for i in sorted(chosen)]
