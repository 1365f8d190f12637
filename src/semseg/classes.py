"""ClassSet: the class names, display palette and ignore value of a dataset.

One object carries these three facts everywhere (data readers, losses, metrics, figures,
checkpoints), so the ignore value can never disagree between two places.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from semseg.errors import SemsegError

RGB = tuple[int, int, int]

DEFAULT_IGNORE_INDEX = 255
# Ignore pixels are drawn white so they stand out from every palette's black background.
IGNORE_COLOR: RGB = (255, 255, 255)


def voc_palette(num_colors: int) -> list[RGB]:
    """The PASCAL VOC colour map: bits of the index spread over the RGB channels."""
    palette = []
    for index in range(num_colors):
        r = g = b = 0
        c = index
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette.append((r, g, b))
    return palette


VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip

CAMVID_CLASSES = (
    "sky", "building", "pole", "road", "sidewalk", "tree", "sign/symbol", "fence", "car",
    "pedestrian", "bicyclist",
)  # fmt: skip
CAMVID_PALETTE: tuple[RGB, ...] = (
    (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222),
    (128, 128, 0), (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192),
)  # fmt: skip

CITYSCAPES_CLASSES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
    "motorcycle", "bicycle",
)  # fmt: skip
CITYSCAPES_PALETTE: tuple[RGB, ...] = (
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
    (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
    (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
    (0, 80, 100), (0, 0, 230), (119, 11, 32),
)  # fmt: skip


@dataclass(frozen=True)
class ClassSet:
    """Class names (index order), one RGB colour per class, and the ignored label value."""

    names: tuple[str, ...]
    palette: tuple[RGB, ...] = field(default=())
    ignore_index: int = DEFAULT_IGNORE_INDEX

    def __post_init__(self) -> None:
        if len(self.names) < 2:
            raise SemsegError(
                f"a dataset needs at least 2 classes, got {list(self.names)}: "
                "list background and foreground classes"
            )
        if len(set(self.names)) != len(self.names):
            raise SemsegError(f"class names must be unique, got {list(self.names)}")
        if 0 <= self.ignore_index < len(self.names):
            raise SemsegError(
                f"ignore_index {self.ignore_index} is a class index (0..{len(self.names) - 1}): "
                "choose a value outside the class range, e.g. 255"
            )
        if not self.palette:
            object.__setattr__(self, "palette", tuple(voc_palette(len(self.names))))
        if len(self.palette) != len(self.names):
            raise SemsegError(
                f"palette has {len(self.palette)} colours for {len(self.names)} classes: "
                "give one [r, g, b] per class or leave the palette out"
            )
        object.__setattr__(self, "palette", tuple(tuple(int(v) for v in c) for c in self.palette))

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def color_table(self) -> np.ndarray:
        """A 256 x 3 uint8 lookup table: class colours, ignore drawn in IGNORE_COLOR."""
        table = np.zeros((256, 3), dtype=np.uint8)
        table[: self.num_classes] = np.asarray(self.palette, dtype=np.uint8)
        if 0 <= self.ignore_index < 256:
            table[self.ignore_index] = IGNORE_COLOR
        return table

    def to_dict(self) -> dict[str, Any]:
        return {
            "names": list(self.names),
            "palette": [list(c) for c in self.palette],
            "ignore_index": self.ignore_index,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "classes") -> ClassSet:
        if not isinstance(data, dict) or "names" not in data:
            raise SemsegError(
                f"{source}: expected a mapping with 'names' (and optional 'palette', "
                "'ignore_index'), e.g. names: [background, cat]"
            )
        unknown = set(data) - {"names", "palette", "ignore_index"}
        if unknown:
            raise SemsegError(
                f"{source}: unknown key(s) {sorted(unknown)}; allowed: names, palette, ignore_index"
            )
        names = data["names"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise SemsegError(f"{source}: 'names' must be a list of strings")
        palette = data.get("palette") or ()
        if not isinstance(palette, (list, tuple)) or not all(_is_colour(c) for c in palette):
            raise SemsegError(f"{source}: 'palette' must be a list of [r, g, b] with values 0..255")
        ignore = data.get("ignore_index", DEFAULT_IGNORE_INDEX)
        if not isinstance(ignore, int) or isinstance(ignore, bool):
            raise SemsegError(f"{source}: 'ignore_index' must be an integer, got {ignore!r}")
        try:
            return cls(tuple(names), tuple(tuple(c) for c in palette), ignore)
        except SemsegError as err:
            raise SemsegError(f"{source}: {err}") from None

    @classmethod
    def from_yaml(cls, path: Path) -> ClassSet:
        path = Path(path)
        if not path.is_file():
            raise SemsegError(
                f"{path}: classes file not found; write one with 'names: [background, ...]'"
            )
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as err:
            raise SemsegError(f"{path}: not valid YAML ({err.__class__.__name__})") from None
        return cls.from_dict(data, source=str(path))


def _is_colour(value: Any) -> bool:
    """[r, g, b] with whole numbers 0..255."""
    return (
        isinstance(value, (list, tuple))
        and len(value) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in value)
    )
