"""The documentation builds, says what the code does, and its commands run.

Blocks marked `<!-- runnable -->` (or `<!-- runnable: slow -->`) in README.md and docs/
are run with bash, page by page in order, in an empty folder (with `configs/` linked in,
as in a clone); a block marked `<!-- file: NAME -->` is written to NAME first. The quick
blocks run here by default, every block with `-m slow`."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from semseg.config_docs import configuration_reference

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
MARKED_BLOCK = re.compile(
    r"<!-- (runnable(?:: (slow))?|file: (\S+)) -->\n```[\w-]*\n(.*?)```", re.DOTALL
)


@dataclass
class Block:
    code: str
    slow: bool = False
    file: str | None = None


def marked_blocks(page: Path) -> list[Block]:
    return [
        Block(code=match[4], slow=bool(match[2]), file=match[3])
        for match in MARKED_BLOCK.finditer(page.read_text())
    ]


def run_blocks(blocks: list[Block], folder: Path, timeout: float) -> None:
    """Write the files and run the commands in order; every command must succeed."""
    (folder / "configs").symlink_to(REPO / "configs")
    script = ["set -euo pipefail"]
    for block in blocks:
        if block.file:
            (folder / block.file).write_text(block.code)
        else:
            script.append(block.code)
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"], "COLUMNS": "120"}
    process = subprocess.Popen(
        ["bash", "-c", "\n".join(script)],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # so a server a block started in the background dies too
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, output[-4000:]


RUNNABLE = [page for page in PAGES if marked_blocks(page)]


@pytest.mark.parametrize("page", RUNNABLE, ids=[page.name for page in RUNNABLE])
def test_quick_runnable_blocks_run(page: Path, tmp_path: Path) -> None:
    quick = [block for block in marked_blocks(page) if not block.slow]
    if not any(block.file is None for block in quick):
        pytest.skip("every runnable block of this page is slow")
    run_blocks(quick, tmp_path, timeout=420)


@pytest.mark.slow
@pytest.mark.parametrize("page", RUNNABLE, ids=[page.name for page in RUNNABLE])
def test_every_runnable_block_runs(page: Path, tmp_path: Path) -> None:
    run_blocks(marked_blocks(page), tmp_path, timeout=3600)


def test_configuration_page_is_the_generated_one() -> None:
    committed = (REPO / "docs" / "configuration.md").read_text()
    assert committed == configuration_reference(), (
        "docs/configuration.md is stale: run `semseg config docs --out docs/configuration.md`"
    )


def test_config_docs_command_prints_and_writes_the_page(run_cli, tmp_path: Path) -> None:
    code, out, _ = run_cli("config", "docs")
    assert code == 0 and out == configuration_reference()
    code, _, _ = run_cli("config", "docs", "--out", tmp_path / "new" / "configuration.md")
    assert code == 0
    assert (tmp_path / "new" / "configuration.md").read_text() == configuration_reference()
    # Every key of every section is on the page, with its default.
    assert "| `train.time_budget` | str or null | `null` |" in out
    assert "| `eval.scales` | list of float | `[1.0]` |" in out


def test_mkdocs_builds_strict(tmp_path: Path) -> None:
    """No broken link or anchor, no page left out of the nav, every API name found."""
    if shutil.which("mkdocs", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("mkdocs is not installed (pip install -e '.[dev]')")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stderr[-4000:]


def test_readme_links_point_at_files() -> None:
    readme = (REPO / "README.md").read_text()
    targets = re.findall(r"\]\(((?!https?://|#)[^)#\s]+)", readme)
    assert targets, "the README links into the docs"
    missing = [target for target in targets if not (REPO / target).exists()]
    assert not missing, f"README links to missing files: {missing}"


def test_readme_is_one_screen_tour_with_the_two_commands_first() -> None:
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 230, f"README has {len(lines)} lines; move detail into docs/"
    first_block = "\n".join(lines[: lines.index("```", lines.index("```bash") + 1)])
    assert "pip install -e . && semseg train" in first_block
    assert "pip install -e '.[dev]' && pytest" in first_block
