"""LabelDecoder: stored mask values -> class indices, checked.

Every format's label rule is data here (a lookup table or a palette), not code in its
reader: VOC stores indices, CamVid marks void with 11, Cityscapes stores label ids that map
to 19 train ids, ADE20K shifts by one with 0 = ignore, and folder datasets may use a
`value_map`, 0/255 binary masks or RGB colours.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from semseg.classes import ClassSet
from semseg.errors import DataProblem

_INDEX_MODES = ("L", "P", "I", "I;16", "I;16B", "I;16L", "1")
_LUT_SIZE = 65536  # covers 8- and 16-bit masks


class LabelDecoder:
    """Decode masks of one dataset.

    `value_map` sends stored values to class indices (or to ignore); values it does not
    mention are kept. With `rgb=True` masks are colour images and each colour of
    `classes.palette` is its class (anything else is a problem, except pure colours mapped
    by `value_map` keyed as 0xRRGGBB).
    """

    def __init__(
        self, classes: ClassSet, value_map: dict[int, int] | None = None, rgb: bool = False
    ) -> None:
        self.classes = classes
        self.rgb = rgb
        self.value_map = dict(value_map or {})
        self._lut: np.ndarray | None = None
        if value_map and not rgb:
            self._lut = np.arange(_LUT_SIZE, dtype=np.int64)
            for stored, label in value_map.items():
                self._lut[stored] = label

    def decode(self, mask: np.ndarray, mode: str, path: Path) -> np.ndarray:
        """H x W uint8 labels; raises DataProblem naming `path` on a wrong mode or value."""
        if self.rgb:
            labels = self._decode_rgb(mask, mode, path)
        else:
            if mode not in _INDEX_MODES:
                raise DataProblem(
                    path,
                    "wrong mask mode",
                    f"mask is {mode} but must be single-channel with one class index per pixel;"
                    " save it as an 8-bit grayscale or palette PNG, or set "
                    "data.mask_encoding=rgb for colour masks",
                )
            if mask.ndim != 2:
                raise DataProblem(
                    path, "wrong mask mode", f"mask has shape {mask.shape}, not H x W"
                )
            labels = mask.astype(np.int64)
            if self._lut is not None:
                labels = self._lut[labels.clip(0, _LUT_SIZE - 1)]
        self._check_values(labels, path)
        return labels.astype(np.uint8)

    def _decode_rgb(self, mask: np.ndarray, mode: str, path: Path) -> np.ndarray:
        if mode not in ("RGB", "RGBA"):
            raise DataProblem(
                path,
                "wrong mask mode",
                f"mask is {mode} but data.mask_encoding=rgb expects "
                "colour masks; set data.mask_encoding=index for index masks",
            )
        if mask.ndim != 3 or mask.shape[2] not in (3, 4):
            raise DataProblem(
                path, "wrong mask mode", f"mask has shape {mask.shape}, not H x W x 3"
            )
        rgb = mask[..., :3].astype(np.int64)
        codes = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        colour_to_label = {
            (r << 16) | (g << 8) | b: index for index, (r, g, b) in enumerate(self.classes.palette)
        }
        colour_to_label.update(self.value_map)
        unique, inverse = np.unique(codes, return_inverse=True)
        unknown = [int(code) for code in unique if int(code) not in colour_to_label]
        if unknown:
            shown = ", ".join(f"({c >> 16}, {(c >> 8) & 255}, {c & 255})" for c in unknown[:4])
            raise DataProblem(
                path,
                "unknown mask colour",
                f"mask colours {shown} are not in the palette of "
                "classes.yaml; add them there or map them with data.value_map (0xRRGGBB: class)",
            )
        table = np.array([colour_to_label[int(code)] for code in unique], dtype=np.int64)
        return table[inverse].reshape(codes.shape)

    def _check_values(self, labels: np.ndarray, path: Path) -> None:
        classes = self.classes
        bad = ((labels < 0) | (labels >= classes.num_classes)) & (labels != classes.ignore_index)
        if bad.any():
            values = sorted(int(v) for v in np.unique(labels[bad]))[:8]
            raise DataProblem(
                path,
                "mask value out of range",
                f"mask values {values} are neither classes 0..{classes.num_classes - 1} nor "
                f"ignore ({classes.ignore_index}); fix the mask, the classes file or "
                "data.value_map",
            )
