"""ruff (a dev dependency) keeps the code as the team formats and lints it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]])
def test_ruff_is_clean(command: list[str]) -> None:
    if shutil.which("ruff") is None and not (Path(sys.prefix) / "bin" / "ruff").exists():
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    done = subprocess.run(
        [sys.executable, "-m", "ruff", *command, "src", "tests", "benchmarks", "docs"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
