from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import write_folder_dataset
from semseg.config import DataConfig, load_config
from semseg.data import eval_dataset, make_loader, read_split, train_dataset
from semseg.data.shapes import SHAPES_CLASSES, generate_shapes
from semseg.data.transforms import train_preset
from semseg.errors import SemsegError


def test_shapes_is_deterministic_and_has_every_class_and_an_ignore_band() -> None:
    images, masks = generate_shapes(40, 48, seed=5, split="train")
    again_images, again_masks = generate_shapes(40, 48, seed=5, split="train")
    assert np.array_equal(images, again_images) and np.array_equal(masks, again_masks)
    other_images, _ = generate_shapes(40, 48, seed=6, split="train")
    assert not np.array_equal(images, other_images)
    val_images, _ = generate_shapes(40, 48, seed=5, split="val")
    assert not np.array_equal(images, val_images)
    values = set(np.unique(masks).tolist())
    assert values == {0, 1, 2, 3, 4, SHAPES_CLASSES.ignore_index}
    ignore_share = (masks == 255).mean()
    assert 0.01 < ignore_share < 0.15  # a thin band, not a flood
    # Ignore pixels are borders: each one touches a labelled pixel or another band pixel.
    assert images.dtype == np.uint8 and images.shape == (40, 48, 48, 3)
    assert images.std() > 20  # textured and noisy, not flat


def test_shapes_split_sizes_come_from_config() -> None:
    data = load_config(None, ["data.shapes.num_train=5", "data.shapes.num_val=3"]).data
    assert len(read_split(data, "train")) == 5
    assert len(read_split(data, "val")) == 3


def test_train_preset_keeps_masks_nearest_and_pads_with_ignore() -> None:
    data = DataConfig(crop_size=40, scale_range=(0.3, 2.5), color_jitter=0.4)
    preset = train_preset(data, ignore_index=255)
    image = torch.randint(0, 256, (3, 30, 30), dtype=torch.uint8)
    mask = torch.zeros(30, 30, dtype=torch.uint8)
    mask[:, 15:] = 3
    mask[:2] = 255
    torch.manual_seed(0)
    saw_padding = False
    for _ in range(20):
        out_image, out_mask = preset(image, mask)
        assert out_image.shape == (3, 40, 40) and out_image.dtype == torch.float32
        assert out_mask.dtype == torch.int64 and out_mask.shape == (40, 40)
        assert set(out_mask.unique().tolist()) <= {0, 3, 255}  # no invented label values
        saw_padding |= bool((out_mask == 255).float().mean() > 0.3)
    assert saw_padding  # crops larger than the scaled image are padded with ignore


def test_eval_preset_leaves_mask_untouched() -> None:
    data = load_config(None, ["data.shapes.num_val=2"]).data
    dataset = eval_dataset(data)
    image, mask = dataset[0]
    raw_image, raw_mask = dataset.load(0)
    assert torch.equal(mask, raw_mask.long())
    mean, std = data.normalization()  # ImageNet's: the config sets none
    expected = (raw_image[0].float() / 255 - mean[0]) / std[0]
    assert torch.allclose(image[0], expected, atol=1e-5)


def folder_config(root: Path, *extra: str) -> DataConfig:
    return load_config(None, ["data.format=folder", f"data.root={root}", *extra]).data


def test_folder_reads_images_masks_and_split_lists(tmp_path: Path) -> None:
    root = write_folder_dataset(tmp_path / "ds", split_lists=True)
    data = folder_config(root)
    train = read_split(data, "train")
    val = read_split(data, "val")
    assert [train.sample_name(i) for i in range(len(train))] == [f"img0{i}" for i in range(4)]
    assert [val.sample_name(i) for i in range(len(val))] == ["img04", "img05"]
    image, mask = train.load(1)
    assert image.shape == (3, 24, 40) and image.dtype == torch.uint8
    assert mask[0].eq(255).all() and mask[1:, :20].eq(0).all() and mask[1:, 20:].eq(2).all()
    assert train.classes.names == ("background", "cat", "dog")


def test_folder_without_lists_splits_by_ratio_and_seed(tmp_path: Path) -> None:
    root = write_folder_dataset(tmp_path / "ds", count=10)
    data = folder_config(root, "data.val_ratio=0.3", "data.split_seed=1")
    train, val = read_split(data, "train"), read_split(data, "val")
    train_names = {train.sample_name(i) for i in range(len(train))}
    val_names = {val.sample_name(i) for i in range(len(val))}
    assert len(val_names) == 3 and len(train_names) == 7 and not train_names & val_names
    again = read_split(folder_config(root, "data.val_ratio=0.3", "data.split_seed=1"), "val")
    assert {again.sample_name(i) for i in range(len(again))} == val_names


def test_binary_0_255_masks_read_as_two_classes(tmp_path: Path) -> None:
    root = write_folder_dataset(tmp_path / "ds", names=("background", "lesion"), binary_255=True)
    _, mask = read_split(folder_config(root), "train").load(0)
    assert set(mask.unique().tolist()) == {0, 1}
    _, kept = read_split(folder_config(root, "data.binary_255=false"), "train").load(0)
    assert set(kept.unique().tolist()) == {0, 255}


def test_folder_trains_through_the_loader(tmp_path: Path) -> None:
    root = write_folder_dataset(tmp_path / "ds", count=6)
    data = folder_config(root, "data.crop_size=16", "data.batch_size=2", "data.num_workers=0")
    loader = make_loader(train_dataset(data), data, 2, shuffle=True)
    images, masks = next(iter(loader))
    assert images.shape == (2, 3, 16, 16) and masks.shape == (2, 16, 16)


def test_eval_batches_of_different_sizes_are_padded_with_ignore(tmp_path: Path) -> None:
    root = write_folder_dataset(tmp_path / "ds", count=4, split_lists=False)
    Image.fromarray(np.zeros((30, 20, 3), np.uint8)).save(root / "images" / "big.jpg")
    Image.fromarray(np.ones((30, 20), np.uint8), mode="L").save(root / "masks" / "big.png")
    (root / "train.txt").write_text("img01\n")
    (root / "val.txt").write_text("img00\nbig\nimg02\n")
    data = folder_config(root, "data.num_workers=0")
    dataset = eval_dataset(data)
    images, masks = next(iter(make_loader(dataset, data, len(dataset), shuffle=False)))
    assert images.shape[-2:] == (30, 40)
    sizes = [dataset.load(i)[1].shape for i in range(len(dataset))]
    for row, (height, width) in enumerate(sizes):
        assert masks[row, height:, :].eq(255).all() and masks[row, :, width:].eq(255).all()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("rgb_mask", "mask is RGB but must be single-channel"),
        ("wrong_size", "masks must have the image's size"),
        ("bad_values", r"mask values \[7\] are neither classes 0..2 nor ignore"),
        ("missing_mask", "no mask for image img00.jpg"),
        ("broken_image", "cannot decode image"),
    ],
)
def test_folder_problems_name_the_file(tmp_path: Path, damage: str, message: str) -> None:
    root = write_folder_dataset(tmp_path / "ds", count=3, split_lists=False)
    target = root / "masks" / "img00.png"
    if damage == "rgb_mask":
        Image.fromarray(np.zeros((24, 40, 3), np.uint8)).save(target)
    elif damage == "wrong_size":
        Image.fromarray(np.zeros((10, 10), np.uint8)).save(target)
    elif damage == "bad_values":
        Image.fromarray(np.full((24, 40), 7, np.uint8)).save(target)
    elif damage == "missing_mask":
        target.unlink()
    elif damage == "broken_image":
        (root / "images" / "img00.jpg").write_bytes(b"not a jpeg")
    data = folder_config(root, "data.val_ratio=0.5")
    with pytest.raises(SemsegError, match=message) as info:
        dataset = read_split(data, "train")
        for index in range(len(dataset)):
            dataset.load(index)
        dataset = read_split(data, "val")
        for index in range(len(dataset)):
            dataset.load(index)
    assert "img00" in str(info.value)


def test_folder_config_errors(tmp_path: Path) -> None:
    with pytest.raises(SemsegError, match="'data.root' is required"):
        read_split(load_config(None, ["data.format=folder"]).data, "train")
    with pytest.raises(SemsegError, match="dataset folder not found"):
        read_split(folder_config(tmp_path / "nowhere"), "train")
    with pytest.raises(
        SemsegError,
        match=r"unknown dataset format 'vocc'; did you mean 'voc'\? available: ade20k, .*, voc",
    ):
        read_split(load_config(None, ["data.format=vocc"]).data, "train")
    root = write_folder_dataset(tmp_path / "ds", split_lists=True)
    (root / "val.txt").write_text("img00\nghost\n")
    with pytest.raises(SemsegError, match=r"ghost: no image for 'ghost'; run 'semseg data check'"):
        read_split(folder_config(root), "val")


def test_augmentation_leaves_the_cached_samples_as_decoded(tmp_path: Path) -> None:
    """With data.cache and no worker the augmentation runs on the cached tensors in the
    training process, epoch after epoch: a transform writing in place would drift them."""
    root = write_folder_dataset(tmp_path / "ds", count=4)
    augment = (
        "data.augment=[{name: random_scale, min: 0.5, max: 1.5}, {name: crop}, {name: hflip},"
        " {name: color_jitter, brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1},"
        " {name: cutout, count: 2, size: 8}]"
    )
    data = folder_config(root, "data.cache=true", "data.crop_size=16", augment)
    dataset = train_dataset(data)
    assert dataset.in_memory  # load() hands out the cached tensors themselves
    decoded = [tuple(t.clone() for t in dataset.load(i)) for i in range(len(dataset))]
    torch.manual_seed(0)
    for _ in range(5):
        for index in range(len(dataset)):
            dataset[index]
    for index, (image, mask) in enumerate(decoded):
        assert torch.equal(dataset.load(index)[0], image)
        assert torch.equal(dataset.load(index)[1], mask)
