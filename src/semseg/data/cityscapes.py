"""`cityscapes`: fine annotations, label ids mapped to the 19 training classes.

    ROOT/leftImg8bit/{train,val,test}/CITY/CITY_SEQ_FRAME_leftImg8bit.png
    ROOT/gtFine/{train,val,test}/CITY/CITY_SEQ_FRAME_gtFine_labelIds.png

Label ids outside the 19 evaluated classes (void, parking, rail track, ...) are ignored,
as in the official cityscapesScripts mapping.
"""

from __future__ import annotations

from semseg.classes import CITYSCAPES_CLASSES, CITYSCAPES_PALETTE, ClassSet
from semseg.config import DataConfig
from semseg.data.base import FileDataset
from semseg.data.labels import LabelDecoder
from semseg.data.listing import dataset_root, require_dir, samples_from_names
from semseg.data.registry import register_format

CITYSCAPES = ClassSet(CITYSCAPES_CLASSES, CITYSCAPES_PALETTE)
# labelId -> trainId for the 19 evaluated classes (cityscapesScripts labels.py).
_TRAIN_IDS = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10,
              24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}  # fmt: skip
LABEL_ID_TO_TRAIN_ID = {
    label_id: _TRAIN_IDS.get(label_id, CITYSCAPES.ignore_index) for label_id in range(256)
}
_IMAGE_SUFFIX = "_leftImg8bit"


@register_format("cityscapes")
def read_cityscapes(data: DataConfig, split: str) -> FileDataset:
    root = dataset_root(data)
    image_root = require_dir(root / "leftImg8bit" / split, "Cityscapes needs leftImg8bit/SPLIT/")
    images = {
        path.name.removesuffix(f"{_IMAGE_SUFFIX}.png"): path
        for path in sorted(image_root.glob(f"*/*{_IMAGE_SUFFIX}.png"))
    }

    def mask_for(name: str) -> object:
        city = name.split("_")[0]
        return root / "gtFine" / split / city / f"{name}_gtFine_labelIds.png"

    samples, problems = samples_from_names(
        images, images.get, mask_for, "expected gtFine/SPLIT/CITY/NAME_gtFine_labelIds.png"
    )
    decoder = LabelDecoder(CITYSCAPES, LABEL_ID_TO_TRAIN_ID)
    return FileDataset(samples, CITYSCAPES, decoder, data.image_mode == "gray", problems)
