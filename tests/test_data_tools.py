"""`semseg data check | preview | convert` and class statistics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import save_image, save_mask, write_folder_dataset
from semseg.config import load_config
from semseg.data import read_split
from semseg.data.check import check_dataset
from semseg.data.stats import ClassStats

CAMVID = Path(__file__).resolve().parents[2] / "shared" / "data" / "camvid"


def test_check_finds_every_kind_of_problem(tmp_path: Path, run_cli) -> None:
    root = write_folder_dataset(tmp_path / "ds", count=8, split_lists=True)
    (root / "images" / "img00.jpg").write_bytes(b"garbage")  # undecodable image
    (root / "masks" / "img01.png").unlink()  # missing mask
    save_mask(root / "masks" / "img02.png", np.zeros((5, 5)))  # size mismatch
    save_mask(root / "masks" / "img03.png", np.full((24, 40), 9))  # values outside classes
    Image.fromarray(np.zeros((24, 40, 3), np.uint8)).save(root / "masks" / "img06.png")  # RGB
    (root / "val.txt").write_text("img06\nimg07\nimg04\n")  # img04 also in train
    data = load_config(None, ["data.format=folder", f"data.root={root}"]).data
    report = check_dataset(data)
    found = {(f.kind, Path(f.path).name if f.path else "") for f in report.findings}
    assert found == {
        ("undecodable image", "img00.jpg"),
        ("missing mask", "img01.png"),
        ("size mismatch", "img02.png"),
        ("mask value out of range", "img03.png"),
        ("wrong mask mode", "img06.png"),
        ("duplicate across splits", "img04"),
    }
    assert report.sample_counts == {"train": 5, "val": 3}  # listed samples with both files
    code, out, _ = run_cli(
        "data",
        "check",
        "data.format=folder",
        f"data.root={root}",
        "--stats",
        tmp_path / "stats.json",
    )
    assert code == 2
    assert "6 problem(s)" in out and "img02.png" in out and "size mismatch" in out


def test_check_reports_an_empty_split(tmp_path: Path) -> None:
    root = write_folder_dataset(tmp_path / "ds", count=3, split_lists=True)
    (root / "val.txt").write_text("")
    data = load_config(None, ["data.format=folder", f"data.root={root}"]).data
    kinds = [finding.kind for finding in check_dataset(data).findings]
    assert kinds == ["empty split"]


def test_clean_check_exits_0_and_writes_stats(tmp_path: Path, run_cli) -> None:
    root = write_folder_dataset(tmp_path / "ds", count=6, split_lists=True)
    stats_path = tmp_path / "stats.json"
    code, out, _ = run_cli(
        "data", "check", "data.format=folder", f"data.root={root}", "--stats", stats_path
    )
    assert code == 0 and "no problems found" in out
    stats = json.loads(stats_path.read_text())
    # 4 training images of 24 x 40: row 0 ignored, the left half background, the right
    # half cat or dog alternately.
    assert stats["pixels"] == [4 * 23 * 20, 2 * 23 * 20, 2 * 23 * 20]
    assert stats["images"] == [4, 2, 2]
    assert stats["other_pixels"] == 4 * 40


def test_class_weight_rules_by_hand() -> None:
    stats = ClassStats(["a", "b", "c"])
    stats.add(np.array([[0, 0, 0, 1]]))  # a: 3, b: 1
    stats.add(np.array([[0, 2, 2, 255]]))  # a: 1, c: 2, one ignore pixel
    # frequencies: a 4/7, b 1/4, c 2/3 -> median 4/7
    expected = [1.0, (4 / 7) / (1 / 4), (4 / 7) / (2 / 3)]
    assert stats.median_frequency_weights() == pytest.approx(expected)
    shares = [4 / 7, 1 / 7, 2 / 7]
    assert stats.enet_weights() == pytest.approx([1 / math.log(1.02 + p) for p in shares])
    assert stats.images == [2, 1, 1] and stats.other_pixels == 1


def test_auto_class_weights_in_training(tmp_path: Path, monkeypatch, tiny_config) -> None:
    monkeypatch.setenv("SEMSEG_CACHE", str(tmp_path / "cache"))
    import semseg

    config = tiny_config.model_copy(deep=True)
    config.loss.class_weights = "auto"
    config.train.epochs = 1
    semseg.train(config)
    cached = list((tmp_path / "cache" / "stats").glob("*.json"))
    assert len(cached) == 1
    weights = json.loads(cached[0].read_text())["weights"]["median_frequency"]
    assert weights[0] < 1 < max(weights)  # background is frequent, shapes are rare


def test_logit_adjustment_takes_the_training_prior(
    tmp_path: Path, monkeypatch, tiny_config
) -> None:
    monkeypatch.setenv("SEMSEG_CACHE", str(tmp_path / "cache"))
    from semseg.data.stats import dataset_stats, smoothed_prior
    from semseg.engine import setup

    config = tiny_config.model_copy(deep=True)
    config.loss.logit_adjustment = 0.5
    run = setup.build_run(config)
    pixels = dataset_stats(run.train_set).pixels
    expected = 0.5 * smoothed_prior(pixels).log().float()
    assert torch.allclose(run.step.loss_fn.logit_offsets, expected)
    assert run.step.loss_fn.losses[0].class_weights is None  # tiny_config has none


def test_preview_writes_a_grid(tmp_path: Path, run_cli) -> None:
    out = tmp_path / "grid.png"
    code, _, _ = run_cli("data", "preview", "data.shapes.num_train=6", "--out", out, "--count", 6)
    assert code == 0
    with Image.open(out) as grid:
        assert grid.size[0] > 600


def test_preview_takes_a_config_file(tmp_path: Path, run_cli) -> None:
    root = write_folder_dataset(tmp_path / "ds", count=5)
    config = tmp_path / "exp.yaml"
    config.write_text(f"data:\n  format: folder\n  root: {root}\n  crop_size: 16\n")
    code, _, err = run_cli(
        "data", "preview", "-c", config, "--out", tmp_path / "p.png", "--count", 3
    )
    assert code == 0, err
    # Every command takes its config as -c; a bare YAML path says so.
    code, _, err = run_cli("data", "preview", config, "--out", tmp_path / "q.png")
    assert code == 2 and f"looks like a config file; pass it with -c/--config {config}" in err
    assert not (tmp_path / "q.png").exists()


def test_convert_any_format_to_folder_round_trips(tmp_path: Path, run_cli) -> None:
    root = tmp_path / "camvid"
    for split in ("train", "val"):
        for index in range(2):
            name = f"{split}{index}"
            save_image(root / split / "images" / f"{name}.jpg", height=6, width=8, seed=index)
            mask = np.full((6, 8), 11, np.uint8)
            mask[:, :4] = index
            save_mask(root / split / "labels" / f"{name}.png", mask)
    out = tmp_path / "converted"
    code, _, err = run_cli(
        "data", "convert", "data.format=camvid", f"data.root={root}", "--out", out
    )
    assert code == 0, err
    assert (out / "train.txt").read_text().split() == ["train0", "train1"]
    converted = load_config(None, ["data.format=folder", f"data.root={out}"]).data
    original = load_config(None, ["data.format=camvid", f"data.root={root}"]).data
    for split in ("train", "val"):
        new, old = read_split(converted, split), read_split(original, split)
        assert new.classes == old.classes
        for index in range(len(old)):
            assert np.array_equal(new.load(index)[1], old.load(index)[1])
    code, _, err = run_cli(
        "data", "convert", "data.format=camvid", f"data.root={root}", "--out", out
    )
    assert code == 2 and "not empty" in err


def test_convert_two_class_dataset_keeps_ignore(tmp_path: Path, run_cli) -> None:
    root = tmp_path / "pet"
    for name in ("a", "b"):
        save_image(root / "images" / f"{name}.jpg", height=6, width=3)
        save_mask(root / "annotations" / "trimaps" / f"{name}.png", np.array([[1, 2, 3]] * 6))
    (root / "annotations" / "trainval.txt").write_text("a 1 1 1\n")
    (root / "annotations" / "test.txt").write_text("b 1 1 1\n")
    out = tmp_path / "out"
    code, _, err = run_cli(
        "data", "convert", "data.format=oxford_pet", f"data.root={root}", "--out", out
    )
    assert code == 0, err
    converted = load_config(None, ["data.format=folder", f"data.root={out}"]).data
    labels = read_split(converted, "train").load(0)[1]
    assert labels[0].tolist()[:3] == [1, 0, 255]  # 255 stays ignore: classes.yaml says so


@pytest.mark.slow
@pytest.mark.skipif(not CAMVID.is_dir(), reason="shared CamVid data not present")
def test_camvid_check_matches_its_readme(run_cli, tmp_path: Path) -> None:
    data = load_config(None, ["data.format=camvid", f"data.root={CAMVID}"]).data
    report = check_dataset(data, ["train", "val", "test"])
    assert report.clean
    assert report.sample_counts == {"train": 367, "val": 101, "test": 233}
    share = report.stats["train"].share_of_all
    # README: sky 16.9, building 23.3, pole 1.0, road 31.7, ..., bicyclist 0.3 (% of pixels)
    readme = [16.9, 23.3, 1.0, 31.7, 4.5, 9.7, 1.2, 1.1, 5.9, 0.6, 0.3]
    assert [100 * s for s in share] == pytest.approx(readme, abs=0.15)
