"""Reading images and label masks from files, with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from semseg.errors import SemsegError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
MASK_EXTENSIONS = (".png", ".bmp", ".tif", ".tiff")
# PIL modes whose pixel values are class indices (P: palette PNG as written by VOC tools).
_INDEX_MODES = ("L", "P", "I", "I;16", "I;16B", "I;16L", "1")


def read_image(path: Path) -> torch.Tensor:
    """RGB uint8 3 x H x W with EXIF orientation applied; grayscale is replicated to RGB.

    PIL rather than torchvision.io: torchvision 0.29 deprecates its image decoders.
    """
    try:
        with Image.open(path) as image:
            pixels = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as err:
        reason = type(err).__name__ if isinstance(err, UnidentifiedImageError) else str(err)
        raise SemsegError(
            f"{path}: cannot decode image ({reason}); re-save it as JPEG or PNG"
        ) from None
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1)


def read_mask(path: Path) -> np.ndarray:
    """H x W array of stored label values, exactly as written (no EXIF, no colour maths)."""
    try:
        with Image.open(path) as mask:
            if mask.mode not in _INDEX_MODES:
                raise SemsegError(
                    f"{path}: mask is {mask.mode} but must be single-channel with one class "
                    "index per pixel; save it as an 8-bit grayscale or palette PNG"
                )
            return np.array(mask)
    except OSError as err:
        raise SemsegError(f"{path}: cannot read mask ({err}); re-save it as PNG") from None
