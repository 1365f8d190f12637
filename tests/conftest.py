"""Shared fixtures: tiny configs, tiny on-disk datasets, and an in-process CLI runner."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

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


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory):
    """Class statistics and other caches go to a temporary folder, not ~/.cache."""
    previous = os.environ.get("SEMSEG_CACHE")
    os.environ["SEMSEG_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if previous is None:
        os.environ.pop("SEMSEG_CACHE", None)
    else:
        os.environ["SEMSEG_CACHE"] = previous


@pytest.fixture
def tiny_config(tmp_path: Path) -> Config:
    """Shapes at 32 px, 16 training images, the smallest U-Net: trains in about a second."""
    return load_config(None, [*TINY_OVERRIDES, f"train.output_dir={tmp_path / 'runs'}"])


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
