"""Reading images and label masks from files, with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from semseg.errors import DataProblem

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
MASK_EXTENSIONS = (".png", ".bmp", ".tif", ".tiff")


def read_image(path: Path, gray: bool = False) -> torch.Tensor:
    """uint8 C x H x W with EXIF orientation applied: RGB (grayscale files replicated), or
    one channel when `gray`.

    PIL rather than torchvision.io: torchvision 0.29 deprecates its image decoders.
    """
    try:
        with Image.open(path) as image:
            pixels = np.asarray(ImageOps.exif_transpose(image).convert("L" if gray else "RGB"))
    except FileNotFoundError:
        raise DataProblem(path, "missing image", "image file not found") from None
    except (UnidentifiedImageError, OSError, ValueError) as err:
        reason = type(err).__name__ if isinstance(err, UnidentifiedImageError) else str(err)
        raise DataProblem(
            path, "undecodable image", f"cannot decode image ({reason}); re-save it as JPEG or PNG"
        ) from None
    if gray:
        pixels = pixels[..., None]
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1)


def read_mask(path: Path) -> tuple[np.ndarray, str]:
    """The stored mask values exactly as written (no EXIF, no colour conversion) and the
    PIL mode: H x W for index masks, H x W x 3|4 for colour masks."""
    try:
        with Image.open(path) as mask:
            return np.array(mask), mask.mode
    except FileNotFoundError:
        raise DataProblem(path, "missing mask", "mask file not found") from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise DataProblem(path, "undecodable mask", "cannot read mask; re-save it as PNG") from None
