"""Output paths and full disks: every command checks its output paths before any work
(creating missing folders, refusing unusable ones in one line), and a write that fails
half-way leaves the previous checkpoint intact and the run resumable."""

from __future__ import annotations

import errno
import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

import semseg
from conftest import TINY_OVERRIDES
from semseg.engine.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    from semseg.cli import main  # noqa: F401  (the run_cli fixture is function-scoped)

    output = tmp_path_factory.mktemp("runs")
    config = semseg.load_config(
        None, [*TINY_OVERRIDES, "train.epochs=1", f"train.output_dir={output}"]
    )
    return semseg.train(config).run_dir / "best.pt"


def test_missing_output_folders_are_created(checkpoint: Path, tmp_path: Path, run_cli) -> None:
    out = tmp_path / "results" / "deeper" / "val.json"
    code, _, err = run_cli("eval", checkpoint, "--out", out, "--report", tmp_path / "r" / "report")
    assert code == 0, err
    assert json.loads(out.read_text())["split"] == "val"
    assert (tmp_path / "r" / "report" / "index.html").is_file()
    preview = tmp_path / "new" / "grid.png"
    code, _, err = run_cli("data", "preview", "--out", preview, "--count", 2)
    assert code == 0 and preview.is_file(), err


def test_unusable_output_paths_stop_before_any_work(
    checkpoint: Path, tmp_path: Path, run_cli
) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    cases = [
        (("eval", checkpoint, "--out", a_file / "val.json"), "a_file is a file, not a folder"),
        (("eval", checkpoint, "--out", tmp_path), "is a folder; --out needs a file path"),
        (("eval", checkpoint, "--report", a_file), "a_file: is a file; --report needs a folder"),
        (("predict", checkpoint, tmp_path, "--out", a_file), "--out needs a folder"),
        (("calibrate", checkpoint, "--out", a_file / "x.pt"), "is a file, not a folder"),
        (("data", "preview", "--out", a_file / "p.png"), "is a file, not a folder"),
        (("data", "convert", "--out", a_file), "--out needs a folder"),
        (("train", *TINY_OVERRIDES, f"train.output_dir={a_file}"), "train.output_dir needs"),
    ]
    for args, message in cases:
        code, out, err = run_cli(*args)
        assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, (args, err)
        assert message in err and "mIoU" not in out, (args, err, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]  # nothing written


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_a_folder_without_write_permission_is_refused(
    checkpoint: Path, tmp_path: Path, run_cli
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    code, _, err = run_cli("eval", checkpoint, "--out", locked / "val.json")
    assert code == 2 and "no permission to write" in err


def _fail_second_last_pt(monkeypatch: pytest.MonkeyPatch) -> dict:
    """torch.save that writes half of last.pt's second save, then reports a full disk."""
    real_save = torch.save
    seen = {"last.pt": 0}

    def save(payload, file, *args, **kwargs):
        if ".last.pt." in getattr(file, "name", ""):
            seen["last.pt"] += 1
            if seen["last.pt"] == 2:
                file.write(b"\0" * 1000)
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(payload, file, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    return seen


def test_a_full_disk_mid_save_keeps_the_last_good_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli
) -> None:
    args = [*TINY_OVERRIDES, "train.epochs=3", f"train.output_dir={tmp_path}", "train.name=full"]
    _fail_second_last_pt(monkeypatch)
    code, _, err = run_cli("train", *args)
    assert code == 2 and err.count("\n") == 1, err
    assert "last.pt: could not write it (No space left on device)" in err
    assert "is full; free space there; the previous last.pt is intact" in err
    run_dir = tmp_path / "full"
    assert load_checkpoint(run_dir / "last.pt")["epoch"] == 1  # the last good one
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "failed"
    monkeypatch.undo()
    code, _, err = run_cli("train", "--resume", run_dir / "last.pt")
    assert code == 0, err
    assert load_checkpoint(run_dir / "last.pt")["epoch"] == 3


def _tiny_tmpfs(folder: Path) -> bool:
    folder.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True
    )
    return done.returncode == 0


def test_a_real_full_disk_names_the_disk(tmp_path: Path, run_cli) -> None:
    disk = tmp_path / "disk"
    if not _tiny_tmpfs(disk):
        pytest.skip("cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)")
    try:
        args = [*TINY_OVERRIDES, f"train.output_dir={disk}", "train.name=small"]
        code, _, err = run_cli("train", *args)
        assert code == 2 and err.count("\n") == 1, err
        assert f"the disk holding {disk} is full" in err
        left = sorted(p.name for p in (disk / "small").iterdir())
        assert not [name for name in left if name.endswith(".tmp")], left
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_a_writer_that_hides_the_disks_error_still_names_the_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """torch.save in some versions turns a failed write into its own RuntimeError."""
    import semseg.files

    class FullDisk:
        def __init__(self, file):
            self.file, self.name = file, file.name

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.file, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

    real_open = open
    monkeypatch.setattr(
        semseg.files, "open", lambda *a, **k: FullDisk(real_open(*a, **k)), raising=False
    )

    def hiding_writer(file) -> None:
        try:
            file.write(b"checkpoint bytes")
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc] unexpected pos") from None

    with pytest.raises(semseg.SemsegError, match="No space left on device.*is full"):
        semseg.files.atomic_write(
            tmp_path / "last.pt", hiding_writer, after="the previous one is intact"
        )
    assert list(tmp_path.iterdir()) == []


def test_outputs_follow_the_umask_not_the_temporary_files_0600(tmp_path: Path) -> None:
    from semseg.files import write_json

    previous = os.umask(0o022)
    try:
        write_json(tmp_path / "summary.json", {"status": "completed"})
    finally:
        os.umask(previous)
    assert (tmp_path / "summary.json").stat().st_mode & 0o777 == 0o644
