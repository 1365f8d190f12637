"""End to end: train on tiny shapes, resume, evaluate and predict from the checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import semseg
from conftest import TINY_OVERRIDES
from semseg.config import Config
from semseg.engine import train as engine_train
from semseg.engine.checkpoint import load_checkpoint
from semseg.errors import SemsegError

RUN_FILES = {
    "config.yaml",
    "best.pt",
    "last.pt",
    "metrics.jsonl",
    "summary.json",
    "curves.png",
    "samples.png",
    "env.json",
}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny training run shared by the read-only tests below."""
    output = tmp_path_factory.mktemp("runs")
    config = semseg.load_config(
        None, [*TINY_OVERRIDES, f"train.output_dir={output}", "train.epochs=3"]
    )
    return semseg.train(config).run_dir


def test_training_writes_the_run_folder(trained_run: Path) -> None:
    assert {p.name for p in trained_run.iterdir()} >= RUN_FILES
    assert not [p for p in trained_run.iterdir() if p.name.endswith(".tmp")]
    history = [
        json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()
    ]
    assert [record["epoch"] for record in history] == [1, 2, 3]
    assert {"lr", "train_loss", "images_per_s", "val_miou", "val_loss"} <= set(history[0])
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    summary = json.loads((trained_run / "summary.json").read_text())
    best = max(history, key=lambda r: r["val_miou"])
    assert summary["best_epoch"] == best["epoch"]
    assert summary["best"]["miou"] == pytest.approx(best["val_miou"])
    assert summary["class_names"] == list(semseg.data.shapes.SHAPES_CLASSES.names)
    saved = yaml.safe_load((trained_run / "config.yaml").read_text())
    assert saved["train"]["epochs"] == 3 and saved["model"]["base_width"] == 4
    env = json.loads((trained_run / "env.json").read_text())
    assert env["torch"] == torch.__version__ and len(env["dataset_fingerprint"]) == 16
    for picture in ("curves.png", "samples.png"):
        with Image.open(trained_run / picture) as image:
            assert image.size[0] > 300 and image.size[1] > 200


def test_eval_reproduces_the_reported_miou(trained_run: Path, run_cli) -> None:
    summary = json.loads((trained_run / "summary.json").read_text())
    out = trained_run / "eval_check.json"
    code, stdout, _ = run_cli("eval", trained_run / "best.pt", "--out", out)
    assert code == 0
    assert "circle" in stdout and "IoU" in stdout
    evaluated = json.loads(out.read_text())
    assert evaluated["metrics"]["miou"] == pytest.approx(summary["best"]["miou"], abs=1e-9)
    assert evaluated["images"] == 8


def test_eval_accepts_data_overrides(trained_run: Path, run_cli) -> None:
    out = trained_run / "eval_other.json"
    code, _, _ = run_cli(
        "eval", trained_run / "best.pt", "data.shapes.num_val=3", "data.shapes.seed=9", "--out", out
    )
    assert code == 0
    assert json.loads(out.read_text())["images"] == 3


def test_predict_cli_writes_palette_masks_and_overlays(trained_run: Path, tmp_path, run_cli):
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (45, 71, 3), dtype=np.uint8)).save(photos / "a.jpg")
    Image.fromarray(rng.integers(0, 255, (30, 30), dtype=np.uint8)).save(photos / "b.png")
    out = tmp_path / "pred"
    code, _, _ = run_cli("predict", trained_run / "best.pt", photos, "--out", out)
    assert code == 0
    with Image.open(out / "a.png") as mask:
        assert mask.mode == "P" and mask.size == (71, 45)
        assert np.asarray(mask).max() < 5
        assert mask.getpalette()[3:6] == [230, 25, 75]  # class 1 colour
    with Image.open(out / "b_overlay.png") as blended:
        assert blended.size == (30, 30) and blended.mode == "RGB"


def test_python_api_predicts_paths_pil_and_arrays(trained_run: Path, tmp_path: Path) -> None:
    predictor = semseg.load(trained_run / "best.pt")
    images, _ = semseg.data.shapes.generate_shapes(1, 40, seed=3, split="test")
    array = images[0]
    path = tmp_path / "x.png"
    Image.fromarray(array).save(path)
    from_array = predictor.predict(array)
    assert from_array.shape == (40, 40) and from_array.dtype == np.int64
    assert np.array_equal(predictor.predict(path), from_array)
    assert np.array_equal(predictor.predict(Image.fromarray(array)), from_array)
    mask, probs = predictor.predict(array, return_probs=True)
    assert probs.shape == (5, 40, 40)
    np.testing.assert_allclose(probs.sum(0), 1, atol=1e-5)
    assert np.array_equal(probs.argmax(0), mask)
    with pytest.raises(SemsegError, match="expected uint8"):
        predictor.predict(array.astype(np.float32))


def _metrics_of(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _comparable(history: list[dict]) -> list[dict]:
    timing = {"images_per_s", "epoch_time_s"}
    return [{k: v for k, v in record.items() if k not in timing} for record in history]


def test_interrupted_and_resumed_run_ends_exactly_like_an_uninterrupted_one(
    tiny_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tiny_config.model_copy(deep=True)
    config.train.deterministic = True
    config.train.device = "cpu"  # bit-exact on CPU; CUDA lacks some deterministic kernels
    config.train.epochs = 3
    config.train.name = "whole"
    whole = semseg.train(config)

    config.train.name = "interrupted"
    real_epoch = engine_train.train_one_epoch
    calls = {"count": 0}

    def crash_in_third_epoch(*args, **kwargs):
        calls["count"] += 1
        if calls["count"] == 3:
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(engine_train, "train_one_epoch", crash_in_third_epoch)
    with pytest.raises(KeyboardInterrupt):
        semseg.train(config)
    monkeypatch.setattr(engine_train, "train_one_epoch", real_epoch)
    interrupted_dir = config.train.output_dir / "interrupted"
    assert load_checkpoint(interrupted_dir / "last.pt")["epoch"] == 2
    resumed = semseg.train(config, resume=interrupted_dir / "last.pt")

    assert _comparable(_metrics_of(resumed.run_dir)) == _comparable(_metrics_of(whole.run_dir))
    assert json.dumps(resumed.best_metrics) == json.dumps(whole.best_metrics)  # NaN-safe
    final_whole = load_checkpoint(whole.run_dir / "last.pt")["state_dict"]
    final_resumed = load_checkpoint(resumed.run_dir / "last.pt")["state_dict"]
    assert all(torch.equal(final_whole[key], final_resumed[key]) for key in final_whole)


def test_sigkill_mid_epoch_then_resume_from_last_pt(tmp_path: Path) -> None:
    """A real process killed with SIGKILL during epoch 3 resumes and finishes the run."""
    output = tmp_path / "runs"
    args = [
        *TINY_OVERRIDES,
        "data.shapes.num_train=64",
        "train.epochs=4",
        f"train.output_dir={output}",
        "train.name=killed",
    ]
    command = [sys.executable, "-c", "from semseg.cli import main; main()", "train", *args]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    last = output / "killed" / "last.pt"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if last.exists() and load_checkpoint(last)["epoch"] >= 2:
            break
        time.sleep(0.05)
    assert process.poll() is None, process.stderr.read().decode()
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    epoch_at_kill = load_checkpoint(last)["epoch"]
    assert 2 <= epoch_at_kill < 4
    resume = subprocess.run(
        [*command[:4], "--resume", str(last)], capture_output=True, text=True, timeout=300
    )
    assert resume.returncode == 0, resume.stderr
    assert f"resuming {output / 'killed'} after epoch {epoch_at_kill}" in resume.stdout
    assert [r["epoch"] for r in _metrics_of(output / "killed")] == [1, 2, 3, 4]
    assert load_checkpoint(last)["epoch"] == 4


def test_user_errors_are_one_line_exit_2(tmp_path: Path, run_cli) -> None:
    foreign = tmp_path / "foreign.pt"
    torch.save({"conv.weight": torch.zeros(1)}, foreign)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint")
    cases = [
        (("eval", tmp_path / "missing.pt"), "checkpoint not found"),
        (("eval", foreign), "not a semseg checkpoint"),
        (("predict", garbage, tmp_path), "not a readable checkpoint"),
        (
            (
                "train",
                "data.format=folder",
                f"data.root={tmp_path / 'none'}",
                f"train.output_dir={tmp_path / 'runs'}",
            ),
            "dataset folder not found",
        ),
        (
            ("train", "model.name=unnet", f"train.output_dir={tmp_path / 'runs'}"),
            "unknown model 'unnet'",
        ),
    ]
    for args, message in cases:
        code, _, err = run_cli(*args)
        assert code == 2, (args, err)
        assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "runs").exists()  # nothing half-made by the failed trainings


def test_debug_flag_shows_the_traceback(tmp_path: Path, run_cli) -> None:
    with pytest.raises(SemsegError, match="checkpoint not found"):
        run_cli("--debug", "eval", tmp_path / "missing.pt")


def test_predict_on_missing_input_and_resume_from_best(trained_run: Path, tmp_path, run_cli):
    code, _, err = run_cli("predict", trained_run / "best.pt", tmp_path / "nope.jpg")
    assert code == 2 and "no such file or folder" in err
    code, _, err = run_cli("train", "--resume", trained_run / "best.pt")
    assert code == 2 and "resume from last.pt" in err


def test_normalisation_comes_from_the_encoder_and_travels_with_the_checkpoint(
    tiny_config: Config,
) -> None:
    """timm records 0.5 / 0.5 for its tf_* weights: training uses and records it, and the
    checkpoint's predictor normalises the same way; data.mean/std set by hand win."""
    config = tiny_config.model_copy(deep=True)
    config.model.name, config.model.encoder = "unet", "tf_efficientnet_lite0"
    config.model.base_width, config.model.decoder_widths = None, [8, 8]
    config.train.epochs, config.train.name = 1, "tf"
    run_dir = semseg.train(config).run_dir
    recorded = load_checkpoint(run_dir / "best.pt")["config"]["data"]
    assert recorded["mean"] == recorded["std"] == [0.5, 0.5, 0.5]
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["data"]["mean"] == [0.5] * 3
    predictor = semseg.load(run_dir / "best.pt")
    white = torch.full((3, 8, 8), 255, dtype=torch.uint8)
    normalised, _ = predictor._preprocess(white, torch.zeros(8, 8, dtype=torch.uint8))
    assert torch.allclose(normalised, torch.ones_like(normalised))  # (1 - 0.5) / 0.5

    chosen = config.model_copy(deep=True)
    chosen.data.mean, chosen.data.std, chosen.train.name = (0.4, 0.4, 0.4), (0.2,) * 3, "own"
    own = load_checkpoint(semseg.train(chosen).run_dir / "best.pt")["config"]["data"]
    assert own["mean"] == [0.4] * 3 and own["std"] == [0.2] * 3


def test_checkpoints_of_format_1_still_load(tiny_config: Config, tmp_path: Path) -> None:
    """Format 1 named the auxiliary head `aux.*`; such files load and predict alike."""
    config = tiny_config.model_copy(deep=True)
    config.model.aux_head, config.train.epochs, config.train.name = True, 1, "aux"
    best = semseg.train(config).run_dir / "best.pt"
    payload = load_checkpoint(best)
    assert any(key.startswith("aux_head.") for key in payload["state_dict"])
    old = payload | {
        "semseg_checkpoint": 1,
        "state_dict": {
            key.replace("aux_head.", "aux.", 1): value
            for key, value in payload["state_dict"].items()
        },
    }
    torch.save(old, tmp_path / "old.pt")
    image = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    expected = semseg.load(best).predict(image)
    assert np.array_equal(semseg.load(tmp_path / "old.pt").predict(image), expected)


@pytest.mark.parametrize(("count", "total"), [(4, 101), (4, 4), (4, 2), (1, 7), (16, 233)])
def test_samples_figure_spreads_its_examples_over_the_split(count, total):
    indices = engine_train.spread_indices(count, total)
    assert len(indices) == min(count, total)
    assert indices == sorted(set(indices)) and indices[0] >= 0 and indices[-1] < total
    # One sample from each of `count` equal parts of the split.
    for part, index in enumerate(indices):
        assert part * total / len(indices) <= index < (part + 1) * total / len(indices)
