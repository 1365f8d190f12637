"""Every dataset format on a tiny generated tree: classes, label rules, ignore pixels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import save_image, save_mask, stored_mask, write_folder_dataset
from semseg.config import DataConfig, load_config
from semseg.data import FORMATS, eval_dataset, read_split, train_dataset
from semseg.errors import SemsegError


def data_config(*overrides: str) -> DataConfig:
    return load_config(None, list(overrides)).data


def labels_of(data: DataConfig, split: str, index: int = 0) -> np.ndarray:
    return read_split(data, split).load(index)[1].numpy()


def stripes(labels: np.ndarray) -> list[int]:
    """The values met left to right along the middle row (the stripes of stored_mask)."""
    row = labels[labels.shape[0] // 2].tolist()
    return [value for i, value in enumerate(row) if i == 0 or value != row[i - 1]]


def test_every_format_is_registered() -> None:
    assert set(FORMATS) == {
        "shapes",
        "folder",
        "voc",
        "camvid",
        "oxford_pet",
        "cityscapes",
        "ade20k",
        "coco",
        "coco_stuff",
    }


def make_voc(root: Path, aug: bool = False) -> Path:
    voc = root / "VOCdevkit" / "VOC2012"
    for index, name in enumerate(("2007_000032", "2007_000039")):
        save_image(voc / "JPEGImages" / f"{name}.jpg", seed=index)
        save_mask(voc / "SegmentationClass" / f"{name}.png", stored_mask([0, 15, 255, 1]), "P")
        if aug:
            save_mask(voc / "SegmentationClassAug" / f"{name}.png", stored_mask([0, 7]))
    lists = voc / "ImageSets" / "Segmentation"
    lists.mkdir(parents=True)
    (lists / "train.txt").write_text("2007_000032\n")
    (lists / "val.txt").write_text("2007_000039\n")
    return root


@pytest.mark.parametrize("level", ["", "VOCdevkit", "VOCdevkit/VOC2012"])
def test_voc_reads_palette_pngs_from_any_root_level(tmp_path: Path, level: str) -> None:
    root = make_voc(tmp_path)
    data = data_config("data.format=voc", f"data.root={root / level}")
    dataset = read_split(data, "train")
    assert dataset.classes.num_classes == 21 and dataset.classes.names[15] == "person"
    assert dataset.classes.palette[15] == (192, 128, 128)
    assert stripes(dataset.load(0)[1].numpy()) == [0, 15, 255, 1]
    assert read_split(data, "val").sample_name(0) == "2007_000039"


def test_voc_sbd_augmented_masks(tmp_path: Path) -> None:
    root = make_voc(tmp_path, aug=True)
    data = data_config("data.format=voc", f"data.root={root}", "data.voc_aug=true")
    assert stripes(labels_of(data, "train")) == [0, 7]


@pytest.mark.parametrize("layout", ["shared", "segnet"])
def test_camvid_void_11_is_ignored_in_both_layouts(tmp_path: Path, layout: str) -> None:
    for split in ("train", "val", "test"):
        name = f"0001TP_{split}"
        if layout == "shared":
            save_image(tmp_path / split / "images" / f"{name}.jpg")
            save_mask(tmp_path / split / "labels" / f"{name}.png", stored_mask([3, 11, 10]))
            (tmp_path / f"{split}.txt").write_text(f"{name}\n")
        else:
            save_image(tmp_path / split / f"{name}.png")
            save_mask(tmp_path / f"{split}annot" / f"{name}.png", stored_mask([3, 11, 10]))
    data = data_config("data.format=camvid", f"data.root={tmp_path}")
    dataset = read_split(data, "test")
    assert dataset.classes.names[10] == "bicyclist" and dataset.classes.num_classes == 11
    assert stripes(dataset.load(0)[1].numpy()) == [3, 255, 10]


@pytest.mark.parametrize(("border", "expected"), [("ignore", [1, 0, 255]), ("class", [1, 0, 2])])
def test_oxford_pet_trimaps(tmp_path: Path, border: str, expected: list[int]) -> None:
    for split, name in (("trainval", "Abyssinian_1"), ("test", "beagle_2")):
        save_image(tmp_path / "images" / f"{name}.jpg")
        save_mask(tmp_path / "annotations" / "trimaps" / f"{name}.png", stored_mask([1, 2, 3]))
        (tmp_path / "annotations" / f"{split}.txt").write_text(f"{name} 1 1 1\n")
    data = data_config(
        "data.format=oxford_pet", f"data.root={tmp_path}", f"data.pet_border={border}"
    )
    train = train_dataset(data)  # default splits: trainval / test
    assert train.sample_name(0) == "Abyssinian_1"
    assert eval_dataset(data).sample_name(0) == "beagle_2"
    assert stripes(labels_of(data, "test")) == expected
    assert train.classes.num_classes == (3 if border == "class" else 2)


def test_cityscapes_label_ids_map_to_train_ids(tmp_path: Path) -> None:
    name = "aachen_000000_000019"
    save_image(tmp_path / "leftImg8bit" / "train" / "aachen" / f"{name}_leftImg8bit.png")
    # road (7) -> 0, parking (9) -> ignore, car (26) -> 13, bicycle (33) -> 18
    save_mask(
        tmp_path / "gtFine" / "train" / "aachen" / f"{name}_gtFine_labelIds.png",
        stored_mask([7, 9, 26, 33]),
    )
    data = data_config("data.format=cityscapes", f"data.root={tmp_path}")
    dataset = read_split(data, "train")
    assert dataset.sample_name(0) == name and dataset.classes.num_classes == 19
    assert stripes(dataset.load(0)[1].numpy()) == [0, 255, 13, 18]


def test_ade20k_reduces_zero_label(tmp_path: Path) -> None:
    root = tmp_path / "ADEChallengeData2016"
    save_image(root / "images" / "validation" / "ADE_val_00000001.jpg")
    save_mask(
        root / "annotations" / "validation" / "ADE_val_00000001.png", stored_mask([0, 1, 150, 3])
    )
    data = data_config("data.format=ade20k", f"data.root={tmp_path}")
    dataset = read_split(data, "val")  # alias of "validation"
    assert dataset.classes.num_classes == 150 and dataset.classes.names[0] == "wall"
    assert stripes(dataset.load(0)[1].numpy()) == [255, 0, 149, 2]


def make_coco(root: Path) -> Path:
    images = root / "val2017"
    save_image(images / "000000000139.jpg", height=20, width=20)
    annotations = {
        "images": [{"id": 139, "file_name": "000000000139.jpg", "height": 20, "width": 20}],
        "categories": [
            {"id": 1, "name": "person"},
            {"id": 18, "name": "dog"},
            {"id": 90, "name": "toothbrush"},
        ],
        "annotations": [
            # A big dog (category 18) with a small person on top; a crowd region.
            {
                "id": 1,
                "image_id": 139,
                "category_id": 18,
                "iscrowd": 0,
                "area": 100,
                "segmentation": [[0, 0, 10, 0, 10, 10, 0, 10]],
                "bbox": [0, 0, 10, 10],
            },
            {
                "id": 2,
                "image_id": 139,
                "category_id": 1,
                "iscrowd": 0,
                "area": 16,
                "segmentation": [[2, 2, 6, 2, 6, 6, 2, 6]],
                "bbox": [2, 2, 4, 4],
            },
            {
                "id": 3,
                "image_id": 139,
                "category_id": 90,
                "iscrowd": 1,
                "area": 25,
                "segmentation": [[14, 14, 19, 14, 19, 19, 14, 19]],
                "bbox": [14, 14, 5, 5],
            },
        ],
    }
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "instances_val2017.json").write_text(json.dumps(annotations))
    return root


def test_coco_instances_render_to_contiguous_semantic_masks(tmp_path: Path) -> None:
    pytest.importorskip("pycocotools")
    data = data_config("data.format=coco", f"data.root={make_coco(tmp_path)}")
    dataset = eval_dataset(data)  # default val split: val2017
    assert dataset.classes.names == ("background", "person", "dog", "toothbrush")
    image, labels = dataset.load(0)
    assert image.shape == (3, 20, 20) and dataset.sample_name(0) == "000000000139"
    assert labels[8, 8] == 2  # dog (id 18 -> 2)
    assert labels[4, 4] == 1  # the smaller person is painted over the dog
    assert labels[16, 16] == 255  # crowd -> ignore
    assert labels[12, 2] == 0  # background


def test_coco_stuff_pngs(tmp_path: Path) -> None:
    save_image(tmp_path / "images" / "train2017" / "a.jpg")
    # stored = id - 1: person (id 1) -> 0, unused thing id 12 -> ignore, sky-other (id 157).
    save_mask(tmp_path / "annotations" / "train2017" / "a.png", stored_mask([0, 11, 156, 255]))
    data = data_config("data.format=coco_stuff", f"data.root={tmp_path}")
    dataset = read_split(data, "train2017")
    classes = dataset.classes
    assert classes.num_classes == 171 and classes.names[80 + 65] == "sky-other"
    assert stripes(dataset.load(0)[1].numpy()) == [0, 255, 145, 255]


def test_folder_mask_suffix_extension_and_16_bit(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    (root / "images").mkdir(parents=True)
    (root / "classes.yaml").write_text("names: [background, road, car]\n")
    for index in range(3):
        save_image(root / "images" / f"000{index}.jpg", seed=index)
        save_mask(root / "labels" / f"000{index}_mask.png", stored_mask([0, 1000, 2000]), "I;16")
    data = data_config(
        "data.format=folder",
        f"data.root={root}",
        "data.mask_dir=labels",
        "data.mask_suffix=_mask",
        "data.value_map={1000: 1, 2000: 2}",
    )
    assert stripes(labels_of(data, "train")) == [0, 1, 2]
    unmapped = data_config(
        "data.format=folder", f"data.root={root}", "data.mask_dir=labels", "data.mask_suffix=_mask"
    )
    with pytest.raises(SemsegError, match=r"mask values \[1000, 2000\] are neither classes"):
        labels_of(unmapped, "train")


def test_folder_rgb_colour_masks_through_the_palette(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    root.mkdir()
    (root / "classes.yaml").write_text(
        "names: [background, road, car]\npalette: [[0, 0, 0], [128, 64, 128], [0, 0, 142]]\n"
    )
    colours = np.zeros((12, 16, 3), dtype=np.uint8)
    colours[:, 8:] = (128, 64, 128)
    colours[:, 12:] = (0, 0, 142)
    colours[0, 0] = (255, 255, 255)  # an "unlabelled" colour mapped to ignore below
    (root / "masks").mkdir()
    for index in range(2):
        save_image(root / "images" / f"{index}.png")
        Image.fromarray(colours).save(root / "masks" / f"{index}.png")
    data = data_config(
        "data.format=folder",
        f"data.root={root}",
        "data.mask_encoding=rgb",
        "data.value_map={0xFFFFFF: 255}",
    )
    labels = labels_of(data, "train")
    assert labels[1, 0] == 0 and labels[1, 9] == 1 and labels[1, 13] == 2 and labels[0, 0] == 255
    strict = data_config("data.format=folder", f"data.root={root}", "data.mask_encoding=rgb")
    with pytest.raises(SemsegError, match=r"mask colours \(255, 255, 255\) are not in the palette"):
        labels_of(strict, "train")


def test_grayscale_images_replicated_or_single_channel(tmp_path: Path) -> None:
    root = write_folder_dataset(tmp_path / "ds", count=4)
    for path in (root / "images").iterdir():
        Image.open(path).convert("L").save(path)
    rgb = read_split(data_config("data.format=folder", f"data.root={root}"), "train")
    image, _ = rgb.load(0)
    assert image.shape[0] == 3 and torch.equal(image[0], image[1])
    gray = eval_dataset(
        data_config("data.format=folder", f"data.root={root}", "data.image_mode=gray")
    )
    normalised, _ = gray[0]
    assert normalised.shape[0] == 1


def test_exif_orientation_is_applied_to_images_not_masks(tmp_path: Path) -> None:
    root = write_folder_dataset(tmp_path / "ds", count=4, size=(10, 20), split_lists=True)
    path = root / "images" / "img00.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees when displayed: the displayed image is 10 wide
    Image.open(path).transpose(Image.Transpose.ROTATE_90).save(path, exif=exif)
    image, mask = read_split(data_config("data.format=folder", f"data.root={root}"), "train").load(
        0
    )
    assert image.shape[1:] == (10, 20) and mask.shape == (10, 20)


def test_cache_decodes_once_and_serves_from_ram(tmp_path: Path) -> None:
    root = write_folder_dataset(tmp_path / "ds", count=4, split_lists=True)
    data = data_config("data.format=folder", f"data.root={root}", "data.cache=true")
    dataset = train_dataset(data)
    assert dataset.in_memory
    first = dataset.load(0)
    for path in (root / "images").iterdir():
        path.unlink()  # served from RAM from now on
    assert torch.equal(dataset.load(0)[0], first[0])


def test_format_specific_keys_are_rejected_elsewhere(tmp_path: Path) -> None:
    with pytest.raises(SemsegError, match="'data.value_map' applies to the folder format only"):
        read_split(data_config("data.value_map={1: 2}"), "train")


def test_malformed_trees_of_each_format_are_reported_by_check(tmp_path: Path) -> None:
    from semseg.data.check import check_dataset

    voc_root = make_voc(tmp_path / "voc")
    voc = voc_root / "VOCdevkit" / "VOC2012"
    (voc / "SegmentationClass" / "2007_000039.png").unlink()
    (voc / "ImageSets" / "Segmentation" / "train.txt").write_text("2007_000032\n2008_999999\n")
    camvid = tmp_path / "camvid"
    for split in ("train", "val"):
        save_image(camvid / split / "images" / "a.jpg")
        save_mask(camvid / split / "labels" / "a.png", stored_mask([3, 12]))  # 12: no class
    city = tmp_path / "city"
    save_image(city / "leftImg8bit" / "train" / "bonn" / "bonn_0_1_leftImg8bit.png")
    save_image(city / "leftImg8bit" / "val" / "bonn" / "bonn_0_2_leftImg8bit.png")
    expectations = {
        ("voc", voc_root): {("missing image", "train"), ("missing mask", "val")},
        ("camvid", camvid): {
            ("mask value out of range", "train"),
            ("mask value out of range", "val"),
            ("duplicate across splits", "train+val"),
        },
        ("cityscapes", city): {("missing mask", "train"), ("missing mask", "val")},
    }
    for (name, root), expected in expectations.items():
        report = check_dataset(data_config(f"data.format={name}", f"data.root={root}"))
        assert {(f.kind, f.split) for f in report.findings} == expected, name


def test_coco_reports_a_missing_annotation_file_in_one_line(tmp_path: Path, run_cli) -> None:
    pytest.importorskip("pycocotools")
    code, _, err = run_cli("data", "check", "data.format=coco", f"data.root={tmp_path}")
    assert code == 2 and "instances_train2017.json: COCO annotation file not found" in err
