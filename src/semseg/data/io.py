"""Reading images and label masks from files, with errors that name the file.

Every read checks the pixel count from the file's header before decoding (a
decompression bomb declares a huge size in a few bytes). Images are 8-bit RGB (or gray)
with their EXIF orientation applied: 16-bit files are scaled to 8 bits, palette, CMYK,
LA and RGBA files converted, and an animated GIF/WebP/PNG gives its first frame. Masks
are read exactly as stored: never colour-converted, never rotated by EXIF (a mask must
stay aligned with the pixel grid it was drawn on).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from semseg.errors import DataProblem

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
MASK_EXTENSIONS = (".png", ".bmp", ".tif", ".tiff")
DEFAULT_MAX_PIXELS = 2**27  # data.max_pixels
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")


@contextmanager
def _opened(
    path: Path, what: str, max_pixels: int, data: bytes | None = None
) -> Iterator[Image.Image]:
    """The file (or `data`, the bytes of one, with `path` naming it in messages) opened by
    PIL (header only), its size checked against `max_pixels`. Any failure to open or
    decode, in here or in the caller's block, is a DataProblem."""
    try:
        with warnings.catch_warnings():
            # Our own cap decides; PIL's warning threshold sits below the default cap.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path if data is None else io.BytesIO(data)) as image:
                _check_size(path, what, image.size, max_pixels)
                yield image
    except DataProblem:
        raise
    except FileNotFoundError:
        raise DataProblem(path, f"missing {what}", f"{what} file not found") from None
    except Image.DecompressionBombError:
        raise DataProblem(
            path, f"{what} too large", f"{what} declares more pixels than PIL will decode"
        ) from None
    except Exception as err:  # PIL raises many types for damaged files; all mean the same
        reason = type(err).__name__ + (f": {err}" if str(err) else "")
        raise DataProblem(
            path,
            f"undecodable {what}",
            f"cannot decode {what} ({reason[:120]}); re-save it as "
            + ("JPEG or PNG" if what == "image" else "PNG"),
        ) from None


def _check_size(path: Path, what: str, size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width * height > max_pixels:
        raise DataProblem(
            path,
            f"{what} too large",
            f"{what} is {width}x{height} = {width * height:,} pixels, over data.max_pixels "
            f"({max_pixels:,}); downscale it, or raise data.max_pixels if it is genuine",
        )
    if width == 0 or height == 0:
        raise DataProblem(path, f"undecodable {what}", f"{what} has no pixels ({width}x{height})")


def read_image(
    path: Path,
    gray: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    data: bytes | None = None,
) -> torch.Tensor:
    """uint8 C x H x W with EXIF orientation applied: RGB (grayscale files replicated), or
    one channel when `gray`. With `data`, the image is those bytes (an upload) and `path`
    only names it in messages.

    PIL rather than torchvision.io: torchvision 0.29 deprecates its image decoders.
    """
    with _opened(path, "image", max_pixels, data) as image:
        image.seek(0)  # animated files: the first frame
        pixels = np.asarray(_eight_bit(path, image).convert("L" if gray else "RGB"))
    if gray:
        pixels = pixels[..., None]
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1)


def _eight_bit(path: Path, image: Image.Image) -> Image.Image:
    """EXIF-oriented image whose mode converts to RGB/L without losing its range."""
    image = ImageOps.exif_transpose(image)
    if image.mode in _SIXTEEN_BIT or image.mode == "I":
        values = np.asarray(image, dtype=np.int64)
        if values.min() < 0 or values.max() > 65535:
            raise DataProblem(
                path, "unsupported image", "32-bit image values; save it as 8- or 16-bit"
            )
        return Image.fromarray((values >> 8).astype(np.uint8), mode="L")
    if image.mode == "F":
        raise DataProblem(
            path, "unsupported image", "floating-point image; save it as 8-bit RGB or gray"
        )
    return image


def read_mask(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[np.ndarray, str]:
    """The stored mask values exactly as written (no EXIF, no colour conversion) and the
    PIL mode: H x W for index masks, H x W x 3|4 for colour masks."""
    with _opened(path, "mask", max_pixels) as mask:
        mask.seek(0)
        return np.array(mask), mask.mode
