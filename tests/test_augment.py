"""Augmentation pipeline and sampling: alignment, no invented labels, photometric
transforms leave masks alone, determinism, errors, rare-class sampling, multi-scale."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from semseg.classes import ClassSet
from semseg.config import DataConfig, load_config
from semseg.data import make_loader, train_dataset
from semseg.data.augment import AUGMENTATIONS, PRESETS, build_augmentations
from semseg.data.base import InMemoryDataset
from semseg.data.sampling import rare_class_weights
from semseg.errors import SemsegError

IGNORE = 255
GEOMETRIC = [
    "hflip",
    "vflip",
    "rotate90",
    "rotate",
    "affine",
    "perspective",
    "elastic",
    "grid_distortion",
    "random_resized_crop",
    "random_scale",
    "crop",
]
PHOTOMETRIC = [
    "color_jitter",
    "hsv_shift",
    "gamma",
    "gaussian_blur",
    "sharpen",
    "equalize",
    "gaussian_noise",
    "cutout",
]
PARAMS = {"crop": {"size": 48}, "random_resized_crop": {"size": 48}}


def test_every_registered_transform_is_classified() -> None:
    assert set(GEOMETRIC) | set(PHOTOMETRIC) == set(AUGMENTATIONS)


def labelled_pair() -> tuple[torch.Tensor, torch.Tensor]:
    """Four big quadrants with labels 0..3; the image encodes each pixel's label."""
    mask = torch.zeros(64, 64, dtype=torch.uint8)
    mask[:32, 32:], mask[32:, :32], mask[32:, 32:] = 1, 2, 3
    mask[30:34, :] = IGNORE
    image = torch.stack([mask.clamp(max=3) * 60 + 20] * 3)  # 20, 80, 140, 200 by label
    return image, mask


def apply(name: str, seed: int = 0, **params):
    image, mask = labelled_pair()
    (transform,) = build_augmentations([{"name": name, "p": 1.0, **params}], IGNORE)
    torch.manual_seed(seed)
    out_image, out_mask = v2.Compose([transform])(tv_tensors.Image(image), tv_tensors.Mask(mask))
    return image, mask, out_image.as_subclass(torch.Tensor), out_mask.as_subclass(torch.Tensor)


@pytest.mark.parametrize("name", GEOMETRIC)
def test_geometric_transforms_keep_image_and_mask_aligned(name: str) -> None:
    for seed in range(3):
        _, mask, image, out = apply(name, seed, **PARAMS.get(name, {}))
        assert set(out.unique().tolist()) <= set(mask.unique().tolist()) | {IGNORE}
        labels = out.long()
        # Interior pixels (label uniform in a 5x5 window) must show their label's colour.
        padded = torch.nn.functional.pad(labels[None, None].float(), (2,) * 4, value=-1)
        window_max = torch.nn.functional.max_pool2d(padded, 5, stride=1)[0, 0]
        window_min = -torch.nn.functional.max_pool2d(-padded, 5, stride=1)[0, 0]
        interior = (window_max == window_min) & (labels != IGNORE)
        if interior.any():
            expected = labels[interior] * 60 + 20
            assert (image[0][interior].long() - expected).abs().max() <= 6, name


@pytest.mark.parametrize("name", PHOTOMETRIC)
def test_photometric_transforms_leave_masks_bit_identical(name: str) -> None:
    _, mask, image, out = apply(name)
    assert torch.equal(out, mask)
    assert image.dtype == torch.uint8


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
def test_same_seed_same_output(name: str) -> None:
    first = apply(name, seed=7, **PARAMS.get(name, {}))
    second = apply(name, seed=7, **PARAMS.get(name, {}))
    assert torch.equal(first[2], second[2]) and torch.equal(first[3], second[3])


def test_presets_and_config_lists_build_and_run() -> None:
    image, mask = labelled_pair()
    for preset in PRESETS:
        data = load_config(None, [f"data.augment_preset={preset}", "data.crop_size=48"]).data
        dataset = InMemoryDataset(
            image.permute(1, 2, 0)[None].numpy(),
            mask[None].numpy(),
            ClassSet(("a", "b", "c", "d")),
            prefix="q",
        )
        from semseg.data.transforms import train_preset

        out_image, out_mask = train_preset(data, IGNORE)(*dataset.load(0))
        assert out_image.shape == (3, 48, 48) and out_mask.dtype == torch.int64
    listed = load_config(
        None, ["data.augment=[{name: rotate, degrees: 30, p: 0.5}, {name: crop, size: 32}]"]
    ).data
    assert listed.augment[0] == {"name": "rotate", "degrees": 30, "p": 0.5}


def test_unknown_names_and_parameters_list_the_valid_ones() -> None:
    with pytest.raises(
        SemsegError,
        match=r"'data.augment\[0\].name': unknown augmentation 'twirl';"
        r" available: affine, .*vflip",
    ):
        build_augmentations([{"name": "twirl"}], IGNORE)
    with pytest.raises(
        SemsegError,
        match=r"'data.augment\[1\].angle': augmentation 'rotate' has no such parameter; "
        r"it takes degrees",
    ):
        build_augmentations([{"name": "hflip"}, {"name": "rotate", "angle": 3}], IGNORE)
    with pytest.raises(SemsegError, match=r"'data.augment\[0\].p': must be between 0 and 1"):
        build_augmentations([{"name": "hflip", "p": 2}], IGNORE)


def skewed_dataset() -> InMemoryDataset:
    """40 images: all background/road; 4 also hold a small 'bicycle' patch (class 2)."""
    masks = np.zeros((40, 16, 16), dtype=np.uint8)
    masks[:, 8:] = 1
    masks[:4, :2, :2] = 2
    images = np.zeros((40, 16, 16, 3), dtype=np.uint8)
    return InMemoryDataset(images, masks, ClassSet(("background", "road", "bicycle")), "s")


def _rare_share(data: DataConfig, dataset: InMemoryDataset) -> float:
    dataset.transform = None
    loader = make_loader(dataset, data, 8, shuffle=True, generator=torch.Generator().manual_seed(0))
    drawn = torch.cat([masks for _ in range(10) for _, masks in loader])
    return (drawn == 2).float().mean().item()


def test_rare_class_sampler_raises_the_rare_pixel_share(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SEMSEG_CACHE", str(tmp_path))
    dataset = skewed_dataset()
    uniform = _rare_share(DataConfig(num_workers=0), dataset)
    rare = _rare_share(DataConfig(num_workers=0, sampler="rare_class"), dataset)
    stronger = _rare_share(
        DataConfig(num_workers=0, sampler="rare_class", rare_class_power=2.0), dataset
    )
    true_share = 4 * 4 / (40 * 256)
    assert uniform == pytest.approx(true_share, rel=0.5)
    assert rare > 3 * uniform and stronger > rare


def test_rare_class_weights_by_hand() -> None:
    table = np.array([[90, 10, 0], [50, 10, 0], [80, 10, 10]])
    weights = rare_class_weights(table, power=1.0)
    # Class pixels 220, 30, 10: image 2 holds all of the rarest class.
    assert weights == pytest.approx(
        [90 / 220 + 10 / 30, 50 / 220 + 10 / 30, 80 / 220 + 10 / 30 + 10 / 10]
    )
    assert weights.argmax() == 2
    assert np.allclose(rare_class_weights(table, power=0.0), table.sum(1))  # by pixels


def test_multiscale_batches_change_size_and_keep_labels(tmp_path) -> None:
    data = load_config(
        None,
        [
            "data.shapes.num_train=8",
            "data.shapes.size=32",
            "data.crop_size=32",
            "data.multiscale=[0.5, 1.5]",
            "data.num_workers=0",
        ],
    ).data
    dataset = train_dataset(data)
    torch.manual_seed(0)
    loader = make_loader(dataset, data, 4, shuffle=True, generator=torch.Generator())
    sizes = set()
    for _ in range(4):
        for images, masks in loader:
            assert images.shape[-2:] == masks.shape[-2:]
            assert set(masks.unique().tolist()) <= {0, 1, 2, 3, 4, IGNORE}
            sizes.add(images.shape[-1])
    assert len(sizes) > 1
