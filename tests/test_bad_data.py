"""Bad data never crashes a run: a folder dataset with broken samples next to good ones,
checked, trained on (stop or skip), evaluated and predicted on; every problem is one line
naming the file, exit code 2, also when it happens in a DataLoader worker."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import semseg
from helpers import write_png_header
from semseg.engine.epoch import TrainingStep

GOOD = [f"good{i}" for i in range(8)]
SIZE = (24, 40)  # H x W of every good sample
BROKEN_TRAIN = ["truncated", "empty", "othersize", "outofrange", "rgbmask", "huge"]


def good_mask(index: int) -> np.ndarray:
    mask = np.zeros(SIZE, np.uint8)
    mask[:, SIZE[1] // 2 :] = 1 + index % 2
    return mask


def broken_folder(root: Path) -> Path:
    """images/ + masks/ + classes.yaml with the seven broken files of the issue, and split
    lists: every broken sample in train, val all good."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for index, name in enumerate([*GOOD, *BROKEN_TRAIN]):
        pixels = rng.integers(0, 255, (*SIZE, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "images" / f"{name}.png")
        Image.fromarray(good_mask(index)).save(root / "masks" / f"{name}.png")
    png = (root / "images" / "truncated.png").read_bytes()
    (root / "images" / "truncated.png").write_bytes(png[: len(png) // 2])
    (root / "images" / "empty.png").write_bytes(b"")
    Image.fromarray(np.zeros((12, 20), np.uint8)).save(root / "masks" / "othersize.png")
    Image.fromarray(np.full(SIZE, 7, np.uint8)).save(root / "masks" / "outofrange.png")
    Image.fromarray(np.zeros((*SIZE, 3), np.uint8)).save(root / "masks" / "rgbmask.png")
    write_png_header(root / "images" / "huge.png", 30000, 30000)
    Image.fromarray(good_mask(0)).save(root / "masks" / "orphan.png")  # no image
    (root / "classes.yaml").write_text(yaml.safe_dump({"names": ["bg", "a", "b"]}))
    (root / "train.txt").write_text("\n".join(GOOD[:6] + BROKEN_TRAIN) + "\n")
    (root / "val.txt").write_text("\n".join(GOOD[6:]) + "\n")
    return root


def overrides(root: Path, tmp_path: Path, *extra: str) -> list[str]:
    return [
        "data.format=folder",
        f"data.root={root}",
        "data.crop_size=24",
        "data.batch_size=2",
        "data.num_workers=1",  # the errors must cross a worker process
        "model.base_width=4",
        "train.epochs=2",
        "train.sample_images=2",
        f"train.output_dir={tmp_path / 'runs'}",
        "train.name=bad",
        *extra,
    ]


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    return broken_folder(tmp_path / "data")


def one_line(err: str) -> str:
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def test_data_check_names_every_broken_file(broken: Path, run_cli) -> None:
    code, out, err = run_cli("data", "check", "data.format=folder", f"data.root={broken}")
    assert code == 2, err
    assert "Traceback" not in out + err
    flat = " ".join(out.split())
    for name in [*BROKEN_TRAIN, "orphan"]:
        assert f"{name}.png" in flat, name
    kinds = next(line for line in out.splitlines() if line.startswith("by kind: "))
    assert "image too large: 1" in kinds and "mask without image: 1" in kinds
    assert "6 problem(s), 1 warning(s)" in flat


def test_training_stops_in_one_line_and_marks_the_run_failed(
    broken: Path, tmp_path: Path, run_cli
) -> None:
    code, _, err = run_cli("train", *overrides(broken, tmp_path))
    assert code == 2
    line = one_line(err)
    assert any(f"{name}.png" in line for name in BROKEN_TRAIN)
    assert "data.on_error=skip" in line and "semseg data check" in line
    summary = json.loads((tmp_path / "runs" / "bad" / "summary.json").read_text())
    assert summary["status"] == "failed" and "data.on_error=skip" in summary["error"]


def test_problems_found_before_the_first_step_leave_no_run_folder(tmp_path: Path, run_cli) -> None:
    root = broken_folder(tmp_path / "data")
    (root / "train.txt").write_text("ghost\n")  # a split list naming a missing file
    code, _, err = run_cli("train", *overrides(root, tmp_path))
    assert code == 2 and "no image for 'ghost'" in one_line(err)
    assert not (tmp_path / "runs").exists()


def test_skip_trains_on_good_samples_only_and_lists_the_broken_ones(
    broken: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli
) -> None:
    received = []
    real_backward = TrainingStep.backward

    def counting_backward(self, images, masks, **options):
        received.extend(masks.clone())
        return real_backward(self, images, masks, **options)

    monkeypatch.setattr(TrainingStep, "backward", counting_backward)
    args = overrides(broken, tmp_path, "data.on_error=skip", "data.max_skipped=0.6")
    # No augmentation: every mask the model receives must be one of the good ones.
    code, out, err = run_cli("train", *args, "data.augment=[]")
    assert code == 0, err
    run_dir = tmp_path / "runs" / "bad"
    listed = [line.split("\t")[0] for line in (run_dir / "skipped.txt").read_text().splitlines()]
    assert sorted(Path(path).stem for path in listed) == sorted(BROKEN_TRAIN)
    good = [torch.from_numpy(good_mask(i)).long() for i in range(len(GOOD))]
    assert received and all(any(torch.equal(m, g) for g in good) for m in received)
    assert len(received) == 2 * 12  # two epochs of 12 samples, broken ones replaced
    history = [json.loads(line) for line in (run_dir / "metrics.jsonl").open()]
    assert all(record["skipped"] >= 1 for record in history)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["skipped_samples"] == 6


def test_skip_still_stops_when_too_many_samples_are_broken(
    broken: Path, tmp_path: Path, run_cli
) -> None:
    code, _, err = run_cli("train", *overrides(broken, tmp_path, "data.on_error=skip"))
    assert code == 2 and "more than data.max_skipped allows" in one_line(err)


def test_validation_never_skips(broken: Path, tmp_path: Path, run_cli) -> None:
    (broken / "val.txt").write_text("good6\nempty\n")
    args = overrides(broken, tmp_path, "data.on_error=skip", "data.max_skipped=0.9")
    code, _, err = run_cli("train", *args)
    assert code == 2
    line = one_line(err)
    assert "empty.png" in line and "evaluation never skips" in line


def test_eval_and_predict_report_broken_files_in_one_line(
    broken: Path, tmp_path: Path, run_cli
) -> None:
    (broken / "train.txt").write_text("\n".join(GOOD[:6]) + "\n")
    code, _, err = run_cli("train", *overrides(broken, tmp_path, "train.epochs=1"))
    assert code == 0, err
    best = tmp_path / "runs" / "bad" / "best.pt"
    (broken / "bad.txt").write_text("good6\nrgbmask\n")
    code, _, err = run_cli("eval", best, "data.num_workers=1", "--split", "bad")
    assert code == 2 and "rgbmask.png" in one_line(err) and "evaluation never skips" in err
    assert not (best.parent / "eval.json").exists()
    for image in ("huge", "empty", "truncated"):
        path = broken / "images" / f"{image}.png"
        code, _, err = run_cli("predict", best, path, "--out", tmp_path / "predictions")
        assert code == 2 and f"{image}.png" in one_line(err), err


def test_resuming_a_failed_run_says_how_it_stopped(
    broken: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli
) -> None:
    (broken / "train.txt").write_text("\n".join(GOOD[:6]) + "\n")
    calls = {"count": 0}
    real_backward = TrainingStep.backward

    def fail_in_epoch_two(self, images, masks, **options):
        calls["count"] += 1
        if calls["count"] == 4:  # 3 batches per epoch
            raise semseg.SemsegError("the disk went away")
        return real_backward(self, images, masks, **options)

    monkeypatch.setattr(TrainingStep, "backward", fail_in_epoch_two)
    code, _, err = run_cli("train", *overrides(broken, tmp_path))
    assert code == 2 and "the disk went away" in err
    run_dir = tmp_path / "runs" / "bad"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["epochs"] == 1
    assert summary["resume_with"] == f"--resume {run_dir / 'last.pt'}"
    monkeypatch.setattr(TrainingStep, "backward", real_backward)
    code, out, err = run_cli("train", "--resume", run_dir / "last.pt")
    assert code == 0, err
    assert "it had failed: the disk went away" in out
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception notes are Python 3.11+")
def test_debug_shows_where_a_worker_raised(broken: Path, tmp_path: Path, run_cli) -> None:
    with pytest.raises(semseg.DataProblem) as info:
        run_cli("--debug", "train", *overrides(broken, tmp_path))
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "raised while loading the sample" in notes and "Traceback" in notes
