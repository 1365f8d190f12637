"""`oxford_pet`: Oxford-IIIT Pet trimaps as foreground/background segmentation.

    ROOT/images/NAME.jpg
    ROOT/annotations/trimaps/NAME.png     1 = pet, 2 = background, 3 = border
    ROOT/annotations/{trainval,test}.txt  NAME CLASS-ID SPECIES BREED per line

The border band is ignored (data.pet_border=ignore, default) or its own class (=class).
"""

from __future__ import annotations

from semseg.classes import ClassSet
from semseg.config import DataConfig
from semseg.data.base import FileDataset
from semseg.data.labels import LabelDecoder
from semseg.data.listing import dataset_root, read_name_list, samples_from_names
from semseg.data.registry import register_format

PET = ClassSet(("background", "pet"), ((0, 0, 0), (255, 128, 0)))
PET_WITH_BORDER = ClassSet(
    ("background", "pet", "border"), ((0, 0, 0), (255, 128, 0), (128, 128, 255))
)


@register_format("oxford_pet", default_splits=("trainval", "test"))
def read_oxford_pet(data: DataConfig, split: str) -> FileDataset:
    root = dataset_root(data)
    border_is_class = data.pet_border == "class"
    classes = PET_WITH_BORDER if border_is_class else PET
    trimap_to_label = {1: 1, 2: 0, 3: 2 if border_is_class else classes.ignore_index}
    samples, problems = samples_from_names(
        read_name_list(root / "annotations" / f"{split}.txt"),
        lambda name: root / "images" / f"{name}.jpg",
        lambda name: root / "annotations" / "trimaps" / f"{name}.png",
        "expected annotations/trimaps/NAME.png",
    )
    decoder = LabelDecoder(classes, trimap_to_label)
    return FileDataset(samples, classes, decoder, data.image_mode == "gray", problems)
