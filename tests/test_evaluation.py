"""Inference modes, boundary metrics, per-image mIoU, `semseg score` and the report."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import semseg
from conftest import TINY_OVERRIDES
from semseg.boundary import BoundaryMetrics
from semseg.config import EvalConfig
from semseg.engine.evaluate import evaluate_model
from semseg.engine.inference import InferenceSettings, predict_logits
from semseg.errors import SemsegError
from semseg.metrics import ConfusionMatrix, per_image_miou
from semseg.models import build_model


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("unet_small", num_classes=3, base_width=8).eval()


def test_one_tile_covering_the_image_equals_whole_image(model) -> None:
    images = torch.randn(2, 3, 70, 90)
    whole = predict_logits(model, images)
    tiled = predict_logits(model, images, InferenceSettings(mode="slide", crop=(96, 96)))
    assert torch.allclose(whole, tiled, atol=1e-5)


def test_sliding_window_averages_overlapping_tiles(model) -> None:
    images = torch.randn(1, 3, 40, 64)
    settings = InferenceSettings(mode="slide", crop=(40, 40), stride=(24, 24), tile_batch=2)
    tiled = predict_logits(model, images, settings)
    left, right = model(images[..., :40]), model(images[..., 24:])
    expected = torch.zeros_like(tiled)
    expected[..., :24] = left[..., :24]
    expected[..., 24:40] = (left[..., 24:] + right[..., :16]) / 2
    expected[..., 40:] = right[..., 16:]
    assert torch.allclose(tiled, expected, atol=1e-5)


def test_tta_is_the_mean_of_flipped_and_scaled_log_probabilities(model) -> None:
    images = torch.randn(1, 3, 64, 64)
    plain = predict_logits(model, images, InferenceSettings(scales=(1.0,)))
    assert torch.allclose(plain, model(images))
    flipped = predict_logits(model, images, InferenceSettings(flip=True))
    by_hand = (model(images).log_softmax(1) + model(images.flip(-1)).flip(-1).log_softmax(1)) / 2
    assert torch.allclose(flipped, by_hand, atol=1e-5)
    multi = predict_logits(model, images, InferenceSettings(scales=(0.5, 1.0)))
    # softmax of the scores: the passes' normalised geometric mean, a probability map
    assert multi.shape == (1, 3, 64, 64) and (multi <= 0).all()
    assert torch.allclose(multi.softmax(1).sum(1), torch.ones(1, 64, 64))


def test_a_class_bias_in_the_model_shifts_tta_scores_by_the_bias() -> None:
    """What calibration relies on: scores fitted without the bias, plus the bias, pick
    the classes the model picks with the bias inside, with every TTA setting."""
    images = torch.randn(2, 3, 48, 64)
    torch.manual_seed(1)
    plain = build_model("unet_small", num_classes=3, base_width=8).eval()
    with torch.no_grad():  # logits a few units apart, as a trained model's are
        plain.head.weight.mul_(100.0)
        plain.head.bias.zero_()
    biased = build_model("unet_small", num_classes=3, base_width=8).eval()
    biased.load_state_dict(plain.state_dict())
    bias = torch.tensor([0.8, -0.5, -0.3])
    biased.set_class_bias(bias)
    assert len(predict_logits(biased, images).argmax(1).unique()) == 3
    for settings in (
        InferenceSettings(),
        InferenceSettings(flip=True),
        InferenceSettings(scales=(0.75, 1.0, 1.25), flip=True),
        InferenceSettings(mode="slide", crop=(32, 32), stride=(16, 16), flip=True),
    ):
        fitted = predict_logits(plain, images, settings) + bias.view(1, 3, 1, 1)
        inside = predict_logits(biased, images, settings)
        assert torch.equal(fitted.argmax(1), inside.argmax(1)), settings


def test_bf16_inference_returns_fp32_scores_with_the_same_argmax(model) -> None:
    images = torch.randn(2, 3, 64, 80)
    exact = predict_logits(model, images)
    for settings in (
        InferenceSettings(amp_dtype=torch.bfloat16),
        InferenceSettings(mode="slide", crop=(48, 48), amp_dtype=torch.bfloat16),
    ):
        fast = predict_logits(model, images, settings)
        assert fast.dtype == torch.float32 and fast.shape == exact.shape
        assert (fast.argmax(1) == exact.argmax(1)).float().mean() > 0.97
        assert not torch.equal(fast, exact)  # autocast really ran in bf16


def test_eval_amp_follows_the_config() -> None:
    cpu = torch.device("cpu")
    assert InferenceSettings.from_config(EvalConfig(amp="off"), cpu).amp_dtype is None
    bf16 = InferenceSettings.from_config(EvalConfig(amp="bf16"), cpu)
    assert bf16.amp_dtype is torch.bfloat16 and bf16.describe() == "whole image, bfloat16"
    with pytest.raises(SemsegError, match="config key 'eval.amp': fp16 needs CUDA"):
        InferenceSettings.from_config(EvalConfig(amp="fp16"), cpu)


def square(size: int = 40, x: tuple[int, int] = (10, 30)) -> torch.Tensor:
    labels = torch.zeros(1, size, size, dtype=torch.long)
    labels[0, 10:30, x[0] : x[1]] = 1
    return labels


def test_boundary_f1_on_known_contours() -> None:
    truth, pred = square(), square(x=(10, 32))
    perfect = BoundaryMetrics(2, tolerance=0.01)
    perfect.update(truth, truth)
    assert perfect.compute()["boundary_f1"] == [1.0, 1.0]
    shifted = BoundaryMetrics(2, tolerance=0.01)  # tolerance: 1 pixel
    shifted.update(pred, truth)
    # Class 1 by hand: 80 predicted contour pixels, 60 within 1 px of the 76 true ones;
    # 60 true contour pixels within 1 px of the predicted contour.
    precision, recall = 60 / 80, 60 / 76
    f1 = shifted.compute()["boundary_f1"][1]
    assert f1 == pytest.approx(2 * precision * recall / (precision + recall))
    tolerant = BoundaryMetrics(2, tolerance=0.05)  # 3 pixels: the 2-pixel shift is forgiven
    tolerant.update(pred, truth)
    assert tolerant.compute()["boundary_f1"][1] == 1.0


def test_boundary_metrics_absent_class_ignore_and_disjoint() -> None:
    truth = square()
    truth[0, :, 35:] = 255  # ignored strip
    pred = torch.zeros_like(truth)
    pred[0, :, 35:] = 2  # predictions on ignored pixels do not count
    metrics = BoundaryMetrics(3)
    metrics.update(pred, truth)
    result = metrics.compute()
    assert result["boundary_f1"][1] == 0.0  # the square was missed entirely
    assert np.isnan(result["boundary_f1"][2])  # class 2 nowhere (its pixels were ignored)
    assert result["boundary_iou"][1] == 0.0
    assert not np.isnan(result["mean_boundary_f1"])


def test_per_image_miou_matches_a_confusion_matrix_per_image() -> None:
    generator = torch.Generator().manual_seed(3)
    target = torch.randint(0, 4, (3, 9, 11), generator=generator)
    target[0, :3] = 255
    pred = torch.randint(0, 4, (3, 9, 11), generator=generator)
    batched = per_image_miou(pred, target, 4)
    for index in range(3):
        single = ConfusionMatrix(4)
        single.update(pred[index], target[index])
        assert batched[index].item() == pytest.approx(single.compute()["miou"])
    assert torch.isnan(per_image_miou(pred[:1], torch.full_like(pred[:1], 255), 4)).all()


class _HalfResolution(torch.nn.Module):
    """A model whose logits are half the label size: evaluation must upsample them."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(images.shape[0], 2, images.shape[2] // 2, images.shape[3] // 2)
        logits[:, 1] = -1
        logits[:, 1, :, logits.shape[-1] // 2 :] = 1  # class 1 on the right half
        return logits


def test_scores_are_resized_to_the_labels_never_the_reverse() -> None:
    labels = torch.zeros(1, 8, 8, dtype=torch.long)
    labels[:, :, 4:] = 1
    loader = [(torch.zeros(1, 3, 8, 8), labels)]
    result = evaluate_model(_HalfResolution(), loader, 2, 255, torch.device("cpu"))
    assert result.confusion.matrix.sum() == 64  # every label pixel was scored
    assert result.confusion.compute()["miou"] == 1.0


class _Fixed(torch.nn.Module):
    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits[images[:, 0, 0, 0].long()]  # each image carries its index


def test_validation_loss_is_the_mean_over_images_whatever_the_batching() -> None:
    """A short last batch counts for its images only (and a rank's shard likewise)."""
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 2, 4, 4, generator=generator)
    labels = torch.randint(0, 2, (3, 4, 4), generator=generator)
    images = torch.arange(3.0).view(3, 1, 1, 1).expand(3, 3, 4, 4)
    loss = torch.nn.CrossEntropyLoss()
    per_image = [loss(logits[i : i + 1], labels[i : i + 1]).item() for i in range(3)]
    loader = [(images[:2], labels[:2]), (images[2:], labels[2:])]
    result = evaluate_model(_Fixed(logits), loader, 2, 255, torch.device("cpu"), loss_fn=loss)
    assert result.mean_loss == pytest.approx(sum(per_image) / 3)


def _write_masks(folder: Path, masks: dict[str, np.ndarray], mode: str = "L") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, mask in masks.items():
        Image.fromarray(mask.astype(np.uint8), mode=mode if mask.ndim == 2 else "RGB").save(
            folder / f"{name}.png"
        )


def test_score_cli_on_another_tools_predictions(tmp_path: Path, run_cli) -> None:
    classes = tmp_path / "classes.yaml"
    classes.write_text(
        yaml.safe_dump(
            {
                "names": ["road", "car"],
                "ignore_index": 255,
                "palette": [[128, 64, 128], [0, 0, 142]],
            }
        )
    )
    truth = {"a": np.zeros((6, 8)), "b": np.ones((6, 8))}
    truth["a"][:, 4:] = 1
    truth["b"][0] = 255
    predicted = {"a": np.zeros((6, 8)), "b": np.ones((6, 8))}  # 'a' misses the car
    _write_masks(tmp_path / "gt", truth)
    _write_masks(tmp_path / "pred", predicted)
    out = tmp_path / "score.json"
    code, stdout, _ = run_cli(
        "score",
        "--pred",
        tmp_path / "pred",
        "--gt",
        tmp_path / "gt",
        "--classes",
        classes,
        "--out",
        out,
    )
    assert code == 0 and "road" in stdout
    metrics = json.loads(out.read_text())["metrics"]
    reference = ConfusionMatrix(2)
    for name in truth:
        reference.update(torch.from_numpy(predicted[name]), torch.from_numpy(truth[name]))
    assert metrics["miou"] == pytest.approx(reference.compute()["miou"])
    assert metrics["per_image_miou"]["images"] == 2

    palette = np.array([[128, 64, 128], [0, 0, 142]], dtype=np.uint8)
    _write_masks(tmp_path / "rgb", {k: palette[v.astype(int)] for k, v in predicted.items()})
    code, _, err = run_cli(
        "score",
        "--pred",
        tmp_path / "rgb",
        "--gt",
        tmp_path / "gt",
        "--classes",
        classes,
        "--rgb",
        "--out",
        tmp_path / "rgb.json",
    )
    assert code == 0, err
    assert json.loads((tmp_path / "rgb.json").read_text())["metrics"]["miou"] == metrics["miou"]

    (tmp_path / "pred" / "b.png").unlink()
    code, _, err = run_cli(
        "score", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "--classes", classes
    )
    assert code == 2 and "1 ground-truth mask(s) have no prediction, e.g. b" in err
    _write_masks(tmp_path / "pred", {"b": np.ones((3, 3))})
    code, _, err = run_cli(
        "score", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "--classes", classes
    )
    assert code == 2 and "predict at the label resolution" in err


@pytest.fixture(scope="module")
def evaluated_run(tmp_path_factory) -> tuple[Path, Path]:
    from conftest import TINY_OVERRIDES

    output = tmp_path_factory.mktemp("runs")
    config = semseg.load_config(None, [*TINY_OVERRIDES, f"train.output_dir={output}"])
    run_dir = semseg.train(config).run_dir
    return run_dir, output / "report"


def test_eval_writes_boundary_metrics_and_an_html_report(evaluated_run, run_cli) -> None:
    run_dir, report = evaluated_run
    code, stdout, _ = run_cli(
        "eval",
        run_dir / "best.pt",
        "--report",
        report,
        "--worst",
        3,
        "eval.mode=slide",
        "eval.crop_size=32",
        "eval.stride=16",
    )
    assert code == 0 and "BF" in stdout
    summary = json.loads((run_dir / "eval.json").read_text())
    assert "sliding window 32x32" in summary["inference"]
    metrics = summary["metrics"]
    assert 0 <= metrics["mean_boundary_f1"] <= 1 and len(metrics["boundary_iou"]) == 5
    assert metrics["per_image_miou"]["images"] == 8
    page = (report / "index.html").read_text()
    for picture in ("confusion.png", "iou.png", "image_miou.png", "worst.png"):
        assert (report / picture).stat().st_size > 1000 and f'src="{picture}"' in page
    assert page.count("<tr>") >= 6 and "circle" in page


@pytest.mark.skipif(shutil.which("chromium") is None, reason="headless Chromium not installed")
def test_report_renders_in_headless_chromium(evaluated_run, run_cli, tmp_path: Path) -> None:
    run_dir, report = evaluated_run
    if not (report / "index.html").exists():
        run_cli("eval", run_dir / "best.pt", "--report", report)
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1100,1800",
            f"--screenshot={shot}",
            (report / "index.html").as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(float)
    # The page shows the confusion heatmap's dark blues and the sample images' colours.
    assert pixels.std() > 30 and (pixels[..., 2] - pixels[..., 0] > 80).mean() > 0.005


def test_predict_uses_the_chosen_inference_mode(evaluated_run, run_cli, tmp_path) -> None:
    run_dir, _ = evaluated_run
    image = np.random.default_rng(0).integers(0, 255, (40, 56, 3), dtype=np.uint8)
    path = tmp_path / "photo.png"
    Image.fromarray(image).save(path)
    default = semseg.load(run_dir / "best.pt")
    whole = default.predict(image)
    amp = default.inference.amp_dtype  # eval.amp=auto: bf16 on CPUs with native bf16
    one_tile = semseg.load(
        run_dir / "best.pt",
        inference=InferenceSettings(mode="slide", crop=(64, 64), amp_dtype=amp),
    ).predict(image)
    assert np.array_equal(whole, one_tile)
    flipped = semseg.load(run_dir / "best.pt", inference=InferenceSettings(flip=True))
    mask, probs = flipped.predict(image, return_probs=True)
    assert mask.shape == (40, 56) and np.allclose(probs.sum(0), 1, atol=1e-5)
    code, _, _ = run_cli(
        "predict",
        run_dir / "best.pt",
        path,
        "--out",
        tmp_path / "out",
        "--tile",
        32,
        "--flip",
        "--scales",
        "0.75,1",
    )
    assert code == 0 and (tmp_path / "out" / "photo.png").exists()
    code, _, err = run_cli("predict", run_dir / "best.pt", path, "--scales", "big")
    assert code == 2 and "--scales 'big'" in err


@pytest.mark.parametrize("faster", [None, torch.bfloat16])
def test_eval_amp_auto_takes_the_faster_precision(
    faster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a CPU with bf16 units `eval.amp=auto` times both precisions for the model and
    keeps the faster (the timer is replaced: which one wins depends on the machine)."""
    from semseg.engine import precision
    from semseg.engine.bundle import bundle_from_checkpoint

    monkeypatch.setattr(
        precision, "_seconds_per_forward", lambda m, i, dtype, r: 1.0 if dtype == faster else 2.0
    )
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: True)
    config = semseg.load_config(
        None, [*TINY_OVERRIDES, "train.epochs=1", f"train.output_dir={tmp_path}"]
    )
    bundle = bundle_from_checkpoint(semseg.train(config).run_dir / "best.pt")
    settings = bundle.inference_settings(bundle.config.eval, torch.device("cpu"))
    assert settings.amp_dtype == faster
    forced = bundle.config.eval.model_copy(update={"amp": "bf16"})
    assert bundle.inference_settings(forced, torch.device("cpu")).amp_dtype == torch.bfloat16
