"""Builders of tiny on-disk datasets for tests."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import yaml
from PIL import Image


def write_folder_dataset(
    root: Path,
    names: tuple[str, ...] = ("background", "cat", "dog"),
    count: int = 6,
    size: tuple[int, int] = (24, 40),
    binary_255: bool = False,
    split_lists: bool = False,
) -> Path:
    """images/NAME.jpg + masks/NAME.png + classes.yaml; each mask a left/right split."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    height, width = size
    for index in range(count):
        image = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
        Image.fromarray(image).save(root / "images" / f"img{index:02d}.jpg")
        mask = np.zeros((height, width), dtype=np.uint8)
        mask[:, width // 2 :] = 255 if binary_255 else 1 + index % (len(names) - 1)
        if not binary_255:
            mask[0, :] = 255  # an ignore row
        Image.fromarray(mask, mode="L").save(root / "masks" / f"img{index:02d}.png")
    (root / "classes.yaml").write_text(yaml.safe_dump({"names": list(names)}))
    if split_lists:
        stems = [f"img{i:02d}" for i in range(count)]
        (root / "train.txt").write_text("\n".join(stems[:-2]) + "\n")
        (root / "val.txt").write_text("\n".join(stems[-2:]) + "\n")
    return root


def save_mask(path: Path, values: np.ndarray, mode: str = "L") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "P":
        image = Image.fromarray(values.astype(np.uint8), mode="P")
        image.putpalette([0, 0, 0, 128, 0, 0] + [0] * (256 * 3 - 6))
    elif mode == "I;16":
        image = Image.fromarray(values.astype(np.uint16))
    else:
        image = Image.fromarray(values.astype(np.uint8), mode=mode)
    image.save(path)


def save_image(path: Path, height: int = 12, width: int = 16, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def stored_mask(values: list[int], height: int = 12, width: int = 16) -> np.ndarray:
    """A mask of vertical stripes, one per value (e.g. [0, 7, 11] for CamVid's void)."""
    mask = np.zeros((height, width), dtype=np.int64)
    for index, value in enumerate(values):
        mask[:, index * width // len(values) :] = value
    return mask


def write_png_header(path: Path, width: int, height: int) -> None:
    """A PNG that declares width x height RGB pixels in a few dozen bytes (a
    decompression bomb's header: nothing past it needs to be valid)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + chunk(b"IEND", b"")
    )
