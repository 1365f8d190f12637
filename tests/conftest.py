"""Shared fixtures: tiny configs, tiny on-disk datasets, and an in-process CLI runner."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from semseg.cli import main
from semseg.config import Config, load_config

TINY_OVERRIDES = [
    "data.shapes.size=32",
    "data.shapes.num_train=16",
    "data.shapes.num_val=8",
    "data.crop_size=32",
    "data.batch_size=4",
    "data.num_workers=0",
    "model.base_width=4",
    "train.epochs=2",
    "train.sample_images=2",
]


@pytest.fixture
def tiny_config(tmp_path: Path) -> Config:
    """Shapes at 32 px, 16 training images, the smallest U-Net: trains in about a second."""
    return load_config(None, [*TINY_OVERRIDES, f"train.output_dir={tmp_path / 'runs'}"])


def write_folder_dataset(
    root: Path,
    names: tuple[str, ...] = ("background", "cat", "dog"),
    count: int = 6,
    size: tuple[int, int] = (24, 40),
    binary_255: bool = False,
    split_lists: bool = False,
) -> Path:
    """images/NAME.jpg + masks/NAME.png + classes.yaml; each mask a left/right split."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    height, width = size
    for index in range(count):
        image = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
        Image.fromarray(image).save(root / "images" / f"img{index:02d}.jpg")
        mask = np.zeros((height, width), dtype=np.uint8)
        mask[:, width // 2 :] = 255 if binary_255 else 1 + index % (len(names) - 1)
        if not binary_255:
            mask[0, :] = 255  # an ignore row
        Image.fromarray(mask, mode="L").save(root / "masks" / f"img{index:02d}.png")
    (root / "classes.yaml").write_text(yaml.safe_dump({"names": list(names)}))
    if split_lists:
        stems = [f"img{i:02d}" for i in range(count)]
        (root / "train.txt").write_text("\n".join(stems[:-2]) + "\n")
        (root / "val.txt").write_text("\n".join(stems[-2:]) + "\n")
    return root


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    """Run `semseg ARGS...` in this process; returns (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["semseg", *map(str, args)])
        code = 0
        try:
            main()
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
