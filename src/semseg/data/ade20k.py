"""`ade20k`: the ADE20K scene-parsing benchmark (150 classes).

    ADEChallengeData2016/images/{training,validation}/ADE_*.jpg
    ADEChallengeData2016/annotations/{training,validation}/ADE_*.png

Reduce-zero-label rule: stored 0 ("other") is ignored and 1..150 become classes 0..149.
The split names train and val are accepted for training and validation.
"""

from __future__ import annotations

from semseg.classes import ClassSet
from semseg.config import DataConfig
from semseg.data.base import FileDataset
from semseg.data.labels import LabelDecoder
from semseg.data.listing import find_root, pair_folders
from semseg.data.registry import register_format

ADE20K_CLASSES = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass",
    "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain",
    "chair", "car", "water", "painting", "sofa", "shelf", "house", "sea", "mirror", "rug",
    "field", "armchair", "seat", "fence", "desk", "rock", "wardrobe", "lamp", "bathtub",
    "railing", "cushion", "base", "box", "column", "signboard", "chest of drawers", "counter",
    "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand", "path", "stairs",
    "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge",
    "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill", "bench",
    "countertop", "stove", "palm", "kitchen island", "computer", "swivel chair", "boat", "bar",
    "arcade machine", "hovel", "bus", "towel", "light", "truck", "tower", "chandelier",
    "awning", "streetlight", "booth", "television receiver", "airplane", "dirt track",
    "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle", "buffet",
    "poster", "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer",
    "plaything", "swimming pool", "stool", "barrel", "basket", "waterfall", "tent", "bag",
    "minibike", "cradle", "oven", "ball", "food", "step", "tank", "trade name", "microwave",
    "pot", "animal", "bicycle", "lake", "dishwasher", "screen", "blanket", "sculpture", "hood",
    "sconce", "vase", "traffic light", "tray", "ashcan", "fan", "pier", "crt screen", "plate",
    "monitor", "bulletin board", "shower", "radiator", "glass", "clock", "flag",
)  # fmt: skip
ADE20K = ClassSet(ADE20K_CLASSES)
_SPLIT_FOLDERS = {"train": "training", "val": "validation"}
# Reduce zero label: 0 -> ignore, v -> v - 1.
REDUCE_ZERO_LABEL = {0: ADE20K.ignore_index, **{v: v - 1 for v in range(1, 256)}}


@register_format("ade20k")
def read_ade20k(data: DataConfig, split: str) -> FileDataset:
    root = find_root(data, "images", [".", "ADEChallengeData2016"])
    folder = _SPLIT_FOLDERS.get(split, split)
    hint = "ADE20K needs images/SPLIT and annotations/SPLIT (training, validation)"
    samples, problems = pair_folders(root / "images" / folder, root / "annotations" / folder, hint)
    decoder = LabelDecoder(ADE20K, REDUCE_ZERO_LABEL)
    return FileDataset(samples, ADE20K, decoder, data.image_mode == "gray", problems)
