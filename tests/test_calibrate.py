"""Class-bias calibration: the fit, its application in the model, checkpoints, train, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import semseg
from conftest import TINY_OVERRIDES
from semseg.engine.calibrate import fit_class_bias
from semseg.engine.checkpoint import load_checkpoint, model_from_checkpoint
from semseg.metrics import ConfusionMatrix
from semseg.models import build_model


def _miou(pred: torch.Tensor, labels: torch.Tensor, num_classes: int) -> float:
    confusion = ConfusionMatrix(num_classes, ignore_index=-1)
    confusion.update(pred, labels)
    return confusion.compute()["miou"]


PRIORS = torch.tensor([0.5, 0.3, 0.15, 0.05])


def _skewed_scores(skew: float, pixels: int = 20_000, seed: int = 0):
    """Noisy scores of labels drawn with unequal frequencies, and the same scores pushed
    toward the rare classes by `skew` * -log(prior), as class-weighted training does."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.multinomial(PRIORS, pixels, replacement=True, generator=generator)
    scores = 2.0 * torch.nn.functional.one_hot(labels, 4).float()
    scores += torch.randn(pixels, 4, generator=generator) * 1.2
    return scores, scores - skew * PRIORS.log(), labels


def test_the_fit_undoes_a_push_toward_rare_classes() -> None:
    clean, skewed, labels = _skewed_scores(skew=1.0)
    training_pixels = (PRIORS * 1e6).round()
    fit = fit_class_bias(skewed, labels, training_pixels)
    assert fit.prior.tolist() == pytest.approx(PRIORS.tolist(), abs=1e-5)
    assert fit.miou_before == pytest.approx(_miou(skewed.argmax(1), labels, 4))
    assert fit.miou_after == pytest.approx(_miou((skewed + fit.bias).argmax(1), labels, 4))
    assert fit.miou_after > fit.miou_before + 0.05
    # Fitted on the unpushed scores, the strength is lower by the push (up to the 0.05
    # grid), and the same mIoU is reached.
    reference = fit_class_bias(clean, labels, training_pixels)
    assert fit.strength - reference.strength == pytest.approx(1.0, abs=0.1)
    assert fit.miou_after == pytest.approx(reference.miou_after, abs=0.005)
    assert reference.miou_after >= _miou(clean.argmax(1), labels, 4)
    assert fit.bias.mean().abs() < 1e-6 and fit.pixels == len(labels)
    direction = fit.bias / fit.strength  # log(prior), centred: rarer classes lower
    assert direction.argsort().tolist() == [3, 2, 1, 0]


def test_a_model_that_is_already_right_is_left_alone() -> None:
    labels = torch.multinomial(PRIORS, 5_000, replacement=True)
    scores = 10.0 * torch.nn.functional.one_hot(labels, 4).float()
    fit = fit_class_bias(scores, labels, [500, 300, 150, 0])  # an absent class is harmless
    assert fit.strength == 0.0 and fit.miou_before == fit.miou_after == 1.0
    assert torch.equal(fit.bias, torch.zeros(4))


def test_a_model_adds_its_class_bias_to_the_logits_outside_the_state_dict() -> None:
    model = build_model("unet_small", 3, base_width=4).eval()
    images = torch.randn(1, 3, 20, 28)
    raw = model(images)
    keys = set(model.state_dict())
    model.set_class_bias(torch.tensor([1.0, -2.0, 0.5]))
    biased = model(images)
    assert set(model.state_dict()) == keys
    assert torch.allclose(biased - raw, torch.tensor([1.0, -2.0, 0.5]).view(1, 3, 1, 1))
    model.set_class_bias(None)
    assert torch.equal(model(images), raw)


@pytest.fixture(scope="module")
def calibrated_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("runs")
    config = semseg.load_config(
        None, [*TINY_OVERRIDES, f"train.output_dir={output}", "train.fit_class_bias=true"]
    )
    return semseg.train(config).run_dir


def test_training_fits_the_bias_into_best_pt(calibrated_run: Path) -> None:
    payload = load_checkpoint(calibrated_run / "best.pt")
    names = payload["classes"]["names"]
    assert len(payload["class_bias"]) == len(names)
    fit = payload["class_bias_fit"]
    assert fit["split"] == "val" and list(fit["offsets"]) == names
    assert fit["miou_after"] >= fit["miou_before"]
    assert sum(fit["prior"].values()) == pytest.approx(1.0)
    summary = json.loads((calibrated_run / "summary.json").read_text())
    assert summary["class_bias"]["offsets"] == pytest.approx(fit["offsets"])
    model = model_from_checkpoint(payload)
    assert model.class_bias.flatten().tolist() == pytest.approx(payload["class_bias"])
    # last.pt continues training from the raw network: it carries no bias.
    assert "class_bias" not in load_checkpoint(calibrated_run / "last.pt")


def test_eval_applies_the_bias_and_warns_on_the_split_it_was_fitted_on(
    calibrated_run: Path, run_cli
) -> None:
    out = calibrated_run / "eval_val.json"
    code, stdout, _ = run_cli("eval", calibrated_run / "best.pt", "--out", out)
    assert code == 0 and "optimistic" in " ".join(stdout.split())
    evaluated = json.loads(out.read_text())
    fit = load_checkpoint(calibrated_run / "best.pt")["class_bias_fit"]
    assert evaluated["class_bias"]["offsets"] == pytest.approx(fit["offsets"])
    # The fit used a sample of val's pixels; on all of them the mIoU is close to it.
    assert evaluated["metrics"]["miou"] == pytest.approx(fit["miou_after"], abs=0.05)


def test_calibrate_command_writes_a_new_checkpoint(calibrated_run: Path, run_cli) -> None:
    source = calibrated_run / "last.pt"
    code, stdout, _ = run_cli("calibrate", source)
    assert code == 0 and "class bias fitted on val" in stdout
    written = calibrated_run / "last_calibrated.pt"
    payload = load_checkpoint(written)
    assert len(payload["class_bias"]) == payload["model"]["num_classes"]
    assert "class_bias" not in load_checkpoint(source)  # the original is untouched
    predictor = semseg.load(written)
    assert predictor.model.class_bias is not None


def test_calibrate_command_reports_a_missing_checkpoint(tmp_path: Path, run_cli) -> None:
    code, _, stderr = run_cli("calibrate", tmp_path / "nope.pt")
    assert code == 2
    assert stderr.count("\n") == 1 and "nope.pt: checkpoint not found" in stderr
    assert not list(tmp_path.iterdir())
