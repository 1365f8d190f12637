"""Reading image and mask files: the pixel cap checked from the header, unusual modes
(16-bit, palette, CMYK, LA, animated), EXIF orientation on images but never on masks,
and the new `data check` findings (duplicate stems, masks without images, unlisted
images without masks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from helpers import write_png_header
from semseg.config import load_config
from semseg.data import read_split
from semseg.data.io import read_image, read_mask
from semseg.errors import DataProblem


def test_pixel_cap_is_checked_from_the_header(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    write_png_header(bomb, 13000, 11000)  # 143 M: over the default cap, under PIL's refusal
    with pytest.raises(DataProblem, match=r"13000x11000 = 143,000,000 pixels, over data.max"):
        read_image(bomb)
    with pytest.raises(DataProblem, match="mask is 13000x11000") as info:
        read_mask(bomb, max_pixels=1000)
    assert info.value.kind == "mask too large"
    with pytest.raises(DataProblem, match="more pixels than PIL will decode"):
        write_png_header(bomb, 30000, 30000)
        read_image(bomb, max_pixels=10**10)


def test_unusual_image_modes_become_eight_bit_rgb(tmp_path: Path) -> None:
    ramp = (np.arange(64 * 8).reshape(8, 64) * 128).astype(np.uint16)  # 0 .. 65408
    Image.fromarray(ramp).save(tmp_path / "sixteen.png")
    image = read_image(tmp_path / "sixteen.png")
    assert image.shape == (3, 8, 64) and image.dtype.is_floating_point is False
    assert int(image.max()) == 65408 >> 8 and int(image[0, 0, 1]) == 128 >> 8

    cmyk = Image.new("CMYK", (8, 6), (0, 255, 255, 0))  # pure red in CMYK
    cmyk.save(tmp_path / "cmyk.jpg")
    red = read_image(tmp_path / "cmyk.jpg")
    assert red.shape == (3, 6, 8) and red[0].float().mean() > 200 and red[1].float().mean() < 60

    Image.new("LA", (5, 4), (90, 10)).save(tmp_path / "la.png")
    assert read_image(tmp_path / "la.png").unique().tolist() == [90]

    palette = Image.fromarray(np.full((4, 5), 3, np.uint8), mode="P")
    palette.putpalette([0, 0, 0] * 3 + [10, 20, 30])  # index 3 -> (10, 20, 30)
    palette.save(tmp_path / "palette.png")
    assert read_image(tmp_path / "palette.png")[:, 0, 0].tolist() == [10, 20, 30]

    frames = [Image.new("RGB", (6, 6), colour) for colour in ((200, 0, 0), (0, 200, 0))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    first = read_image(tmp_path / "anim.gif")
    assert first[0, 0, 0] > 150 and first[1, 0, 0] < 50  # the first frame, red


def test_exif_rotates_images_but_never_masks(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees
    Image.new("RGB", (8, 4)).save(tmp_path / "photo.jpg", exif=exif)
    assert tuple(read_image(tmp_path / "photo.jpg").shape) == (3, 8, 4)
    values = np.zeros((4, 8), np.uint8)
    values[:, :2] = 1
    Image.fromarray(values).save(tmp_path / "mask.png", exif=exif)
    mask, mode = read_mask(tmp_path / "mask.png")
    assert mode == "L" and np.array_equal(mask, values)  # as stored, not rotated


def test_damaged_and_odd_files_are_data_problems(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image")
    Image.fromarray(np.zeros((4, 4), np.float32), mode="F").save(tmp_path / "float.tiff")
    for name, kind in [
        ("empty.png", "undecodable image"),
        ("text.png", "undecodable image"),
        ("float.tiff", "unsupported image"),
        ("missing.png", "missing image"),
    ]:
        with pytest.raises(DataProblem) as info:
            read_image(tmp_path / name)
        assert info.value.kind == kind and info.value.path.endswith(name)


def _folder(root: Path, images: list[str], masks: list[str], lists: dict[str, list[str]]):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for name in images:
        Image.new("RGB", (8, 6)).save(root / "images" / name)
    for name in masks:
        Image.fromarray(np.zeros((6, 8), np.uint8)).save(root / "masks" / name)
    (root / "classes.yaml").write_text(yaml.safe_dump({"names": ["bg", "fg", "other"]}))
    for split, names in lists.items():
        (root / f"{split}.txt").write_text("\n".join(names) + "\n")
    return load_config(None, ["data.format=folder", f"data.root={root}"]).data


def test_listing_reports_duplicates_orphans_and_unlisted_images(tmp_path: Path) -> None:
    data = _folder(
        tmp_path / "ds",
        images=["a.png", "b.png", "b.jpg", "unused.png", "spare.png"],
        masks=["a.png", "b.png", "orphan.png", "spare.png"],
        lists={"train": ["a", "b"], "val": ["a"]},
    )
    problems = read_split(data, "train", strict=False).problems
    found = {(p.kind, Path(p.path).name, p.warning) for p in problems}
    assert found == {
        ("duplicate stem", "b.png", False),  # b.jpg is read, b.png is the second
        ("mask without image", "orphan.png", True),
        ("image without mask", "unused.png", True),  # in no list and no mask
    }


def test_data_check_exits_0_with_warnings_only(tmp_path: Path, run_cli) -> None:
    _folder(
        tmp_path / "ds",
        images=["a.png", "b.png"],
        masks=["a.png", "b.png", "orphan.png"],
        lists={"train": ["a"], "val": ["b"]},
    )
    code, out, _ = run_cli("data", "check", "data.format=folder", f"data.root={tmp_path / 'ds'}")
    flat = " ".join(out.split())
    assert code == 0 and "0 problem(s), 1 warning(s)" in flat and "orphan.png" in flat
