"""`voc`: PASCAL VOC 2012 segmentation, optionally with the SBD augmented masks.

    VOCdevkit/VOC2012/JPEGImages/NAME.jpg
    VOCdevkit/VOC2012/SegmentationClass/NAME.png       palette PNG, 255 = border (ignore)
    VOCdevkit/VOC2012/SegmentationClassAug/NAME.png    SBD masks (data.voc_aug=true)
    VOCdevkit/VOC2012/ImageSets/Segmentation/{train,val,trainval}.txt
    VOCdevkit/VOC2012/ImageSets/SegmentationAug/{train_aug,...}.txt   (optional, with aug)

data.root may point at VOC2012, VOCdevkit, or the folder holding VOCdevkit.
"""

from __future__ import annotations

from semseg.classes import VOC_CLASSES, ClassSet, voc_palette
from semseg.config import DataConfig
from semseg.data.base import FileDataset
from semseg.data.labels import LabelDecoder
from semseg.data.listing import find_root, read_name_list, samples_from_names
from semseg.data.registry import register_format

VOC = ClassSet(VOC_CLASSES, tuple(voc_palette(len(VOC_CLASSES))))


@register_format("voc")
def read_voc(data: DataConfig, split: str) -> FileDataset:
    root = find_root(data, "JPEGImages", [".", "VOC2012", "VOCdevkit/VOC2012"])
    mask_dir = root / ("SegmentationClassAug" if data.voc_aug else "SegmentationClass")
    list_path = root / "ImageSets" / "Segmentation" / f"{split}.txt"
    aug_list = root / "ImageSets" / "SegmentationAug" / f"{split}.txt"
    if data.voc_aug and aug_list.is_file():
        list_path = aug_list
    samples, problems = samples_from_names(
        read_name_list(list_path),
        lambda name: root / "JPEGImages" / f"{name}.jpg",
        lambda name: mask_dir / f"{name}.png",
        f"expected {mask_dir.name}/NAME.png",
    )
    return FileDataset(samples, VOC, LabelDecoder(VOC), data.image_mode == "gray", problems)
