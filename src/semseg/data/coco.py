"""`coco` (instance JSON rendered to semantic masks) and `coco_stuff` (label PNGs).

coco:
    ROOT/annotations/instances_SPLIT.json     SPLIT e.g. train2017, val2017
    ROOT/SPLIT/FILE.jpg   (or ROOT/images/SPLIT/FILE.jpg)

Category ids (1..90 with gaps) become contiguous classes 1..K after "background" (0).
Instances are painted largest first, so smaller objects stay visible where they overlap;
crowd regions are ignored. Needs pycocotools: pip install 'semseg[coco]'.

coco_stuff (COCO-Stuff 164k, 171 classes):
    ROOT/images/SPLIT/NAME.jpg
    ROOT/annotations/SPLIT/NAME.png           stored value = category id - 1, 255 = unlabelled
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import numpy as np

from semseg.classes import ClassSet
from semseg.config import DataConfig
from semseg.data.base import FileDataset, Sample
from semseg.data.labels import LabelDecoder
from semseg.data.listing import dataset_root, pair_folders, samples_from_names
from semseg.data.registry import register_format
from semseg.errors import DataProblem, SemsegError

COCO_THINGS = {
    1: "person", 2: "bicycle", 3: "car", 4: "motorcycle", 5: "airplane", 6: "bus", 7: "train",
    8: "truck", 9: "boat", 10: "traffic light", 11: "fire hydrant", 13: "stop sign",
    14: "parking meter", 15: "bench", 16: "bird", 17: "cat", 18: "dog", 19: "horse",
    20: "sheep", 21: "cow", 22: "elephant", 23: "bear", 24: "zebra", 25: "giraffe",
    27: "backpack", 28: "umbrella", 31: "handbag", 32: "tie", 33: "suitcase", 34: "frisbee",
    35: "skis", 36: "snowboard", 37: "sports ball", 38: "kite", 39: "baseball bat",
    40: "baseball glove", 41: "skateboard", 42: "surfboard", 43: "tennis racket", 44: "bottle",
    46: "wine glass", 47: "cup", 48: "fork", 49: "knife", 50: "spoon", 51: "bowl",
    52: "banana", 53: "apple", 54: "sandwich", 55: "orange", 56: "broccoli", 57: "carrot",
    58: "hot dog", 59: "pizza", 60: "donut", 61: "cake", 62: "chair", 63: "couch",
    64: "potted plant", 65: "bed", 67: "dining table", 70: "toilet", 72: "tv", 73: "laptop",
    74: "mouse", 75: "remote", 76: "keyboard", 77: "cell phone", 78: "microwave", 79: "oven",
    80: "toaster", 81: "sink", 82: "refrigerator", 84: "book", 85: "clock", 86: "vase",
    87: "scissors", 88: "teddy bear", 89: "hair drier", 90: "toothbrush",
}  # fmt: skip
COCO_STUFF_NAMES = (
    "banner",
    "blanket",
    "branch",
    "bridge",
    "building-other",
    "bush",
    "cabinet",
    "cage",
    "cardboard",
    "carpet",
    "ceiling-other",
    "ceiling-tile",
    "cloth",
    "clothes",
    "clouds",
    "counter",
    "cupboard",
    "curtain",
    "desk-stuff",
    "dirt",
    "door-stuff",
    "fence",
    "floor-marble",
    "floor-other",
    "floor-stone",
    "floor-tile",
    "floor-wood",
    "flower",
    "fog",
    "food-other",
    "fruit",
    "furniture-other",
    "grass",
    "gravel",
    "ground-other",
    "hill",
    "house",
    "leaves",
    "light",
    "mat",
    "metal",
    "mirror-stuff",
    "moss",
    "mountain",
    "mud",
    "napkin",
    "net",
    "paper",
    "pavement",
    "pillow",
    "plant-other",
    "plastic",
    "platform",
    "playingfield",
    "railing",
    "railroad",
    "river",
    "road",
    "rock",
    "roof",
    "rug",
    "salad",
    "sand",
    "sea",
    "shelf",
    "sky-other",
    "skyscraper",
    "snow",
    "solid-other",
    "stairs",
    "stone",
    "straw",
    "structural-other",
    "table",
    "tent",
    "textile-other",
    "towel",
    "tree",
    "vegetable",
    "wall-brick",
    "wall-concrete",
    "wall-other",
    "wall-panel",
    "wall-stone",
    "wall-tile",
    "wall-wood",
    "water-other",
    "waterdrops",
    "window-blind",
    "window-other",
    "wood",
)
# COCO-Stuff ids: things 1..90 (80 used), stuff 92..182; PNGs store id - 1.
_STUFF_IDS = dict(zip(range(92, 183), COCO_STUFF_NAMES, strict=True))
_COCO_STUFF_IDS = sorted({**COCO_THINGS, **_STUFF_IDS})
COCO_STUFF = ClassSet(tuple({**COCO_THINGS, **_STUFF_IDS}[i] for i in _COCO_STUFF_IDS))
STORED_TO_LABEL = {stored: COCO_STUFF.ignore_index for stored in range(255)} | {
    category - 1: index for index, category in enumerate(_COCO_STUFF_IDS)
}


class CocoDataset(FileDataset):
    """Masks rendered on the fly from instance polygons / RLEs."""

    def __init__(
        self,
        coco: Any,
        samples: list[Sample],
        image_ids: list[int],
        category_to_label: dict[int, int],
        classes: ClassSet,
        gray: bool,
        problems: list[DataProblem],
    ) -> None:
        super().__init__(samples, classes, LabelDecoder(classes), gray, problems)
        self.coco = coco
        self.image_ids = image_ids
        self.category_to_label = category_to_label

    def read_labels(self, index: int) -> np.ndarray:
        try:
            return self._render(index)
        except DataProblem:
            raise
        except Exception as err:  # malformed annotations fail in many ways, pycocotools' too
            raise DataProblem(
                self.samples[index].mask,
                "bad annotation",
                f"image {self.image_ids[index]}'s annotations cannot be rendered "
                f"({type(err).__name__}: {str(err)[:80]}); fix the annotation file",
            ) from None

    def _render(self, index: int) -> np.ndarray:
        info = self.coco.imgs[self.image_ids[index]]
        labels = np.zeros((info["height"], info["width"]), dtype=np.uint8)
        crowd = np.zeros_like(labels, dtype=bool)
        annotations = self.coco.loadAnns(self.coco.getAnnIds(imgIds=self.image_ids[index]))
        for annotation in sorted(annotations, key=lambda a: -a.get("area", 0)):
            if annotation["category_id"] not in self.category_to_label:
                raise DataProblem(
                    self.samples[index].mask,
                    "mask value out of range",
                    f"annotation {annotation['id']} has unknown category "
                    f"{annotation['category_id']}; fix the categories list",
                )
            region = self.coco.annToMask(annotation).astype(bool)
            if annotation.get("iscrowd"):
                crowd |= region
            else:
                labels[region] = self.category_to_label[annotation["category_id"]]
        labels[crowd & (labels == 0)] = self.classes.ignore_index
        return labels


def _load_coco_api(annotation_file: Path) -> Any:
    try:
        from pycocotools.coco import COCO
    except ImportError:
        raise SemsegError("the coco format needs pycocotools: pip install 'semseg[coco]'") from None
    if not annotation_file.is_file():
        raise SemsegError(
            f"{annotation_file}: COCO annotation file not found; check data.root "
            "and the split name (e.g. data.train_split=train2017)"
        )
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress lines
        try:
            return COCO(str(annotation_file))
        except (ValueError, KeyError, TypeError, AttributeError, IndexError, AssertionError) as err:
            raise SemsegError(
                f"{annotation_file}: not a COCO instances file ({type(err).__name__}: {err})"
            ) from None


@register_format("coco", default_splits=("train2017", "val2017"))
def read_coco(data: DataConfig, split: str) -> CocoDataset:
    root = dataset_root(data)
    annotation_file = root / "annotations" / f"instances_{split}.json"
    coco = _load_coco_api(annotation_file)
    try:
        return _coco_dataset(data, root, split, annotation_file, coco)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise SemsegError(
            f"{annotation_file}: malformed COCO instances file ({type(err).__name__}: {err}); "
            "images need id, file_name, height, width; categories need id and name"
        ) from None


def _coco_dataset(
    data: DataConfig, root: Path, split: str, annotation_file: Path, coco: Any
) -> CocoDataset:
    categories = sorted(coco.cats.values(), key=lambda category: category["id"])
    classes = ClassSet(("background", *(category["name"] for category in categories)))
    category_to_label = {category["id"]: i + 1 for i, category in enumerate(categories)}
    image_dir = root / split if (root / split).is_dir() else root / "images" / split
    by_name = {
        Path(info["file_name"]).stem: image_id for image_id, info in sorted(coco.imgs.items())
    }
    samples, problems = samples_from_names(
        by_name,
        lambda name: image_dir / coco.imgs[by_name[name]]["file_name"],
        lambda name: annotation_file,
        "",
    )
    image_ids = [by_name[sample.name] for sample in samples]
    gray = data.image_mode == "gray"
    return CocoDataset(coco, samples, image_ids, category_to_label, classes, gray, problems)


@register_format("coco_stuff", default_splits=("train2017", "val2017"))
def read_coco_stuff(data: DataConfig, split: str) -> FileDataset:
    root = dataset_root(data)
    hint = "COCO-Stuff needs images/SPLIT and annotations/SPLIT"
    samples, problems = pair_folders(root / "images" / split, root / "annotations" / split, hint)
    decoder = LabelDecoder(COCO_STUFF, STORED_TO_LABEL)
    return FileDataset(samples, COCO_STUFF, decoder, data.image_mode == "gray", problems)
