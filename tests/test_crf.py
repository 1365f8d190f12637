"""The CRF refinement (eval.crf): it cleans noisy predictions along image edges, keeps
confident ones, and runs inside eval/predict."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import semseg
from conftest import TINY_OVERRIDES
from semseg.engine.crf import CRFSettings, crf_refine
from semseg.errors import SemsegError


def two_regions(height: int = 40, width: int = 60) -> tuple[torch.Tensor, torch.Tensor]:
    """A dark left half and a bright right half (0..255), and its labels (0 | 1)."""
    image = torch.full((1, 3, height, width), 30.0)
    image[..., width // 2 :] = 220.0
    labels = torch.zeros(1, height, width, dtype=torch.long)
    labels[..., width // 2 :] = 1
    return image, labels


def test_crf_repairs_noisy_pixels_inside_uniform_regions() -> None:
    image, labels = two_regions()
    generator = torch.Generator().manual_seed(0)
    scores = torch.nn.functional.one_hot(labels, 2).permute(0, 3, 1, 2).float()
    scores = scores + 0.9 * torch.randn(scores.shape, generator=generator)
    before = (scores.argmax(1) == labels).float().mean()
    refined = crf_refine(scores, image, CRFSettings())
    after = (refined.argmax(1) == labels).float().mean()
    assert before < 0.85 and after > 0.99, (before, after)
    assert torch.allclose(refined.exp().sum(1), torch.ones(1, 40, 60), atol=1e-5)


def test_crf_keeps_confident_predictions_and_zero_iterations_change_nothing() -> None:
    image, labels = two_regions()
    scores = 8 * torch.nn.functional.one_hot(labels, 2).permute(0, 3, 1, 2).float()
    assert torch.equal(crf_refine(scores, image, CRFSettings()).argmax(1), labels)
    unchanged = crf_refine(scores, image, CRFSettings(iterations=0))
    assert torch.allclose(unchanged, scores.log_softmax(1))


def test_eval_with_crf(tmp_path: Path) -> None:
    config = semseg.load_config(
        None, [*TINY_OVERRIDES, "train.epochs=1", f"train.output_dir={tmp_path}"]
    )
    best = semseg.train(config).run_dir / "best.pt"
    plain = semseg.evaluate(best, out=tmp_path / "plain.json")
    refined = semseg.evaluate(best, overrides=["eval.crf=true"], out=tmp_path / "crf.json")
    assert "CRF (5 iterations, 7x7 window)" in refined["inference"]
    assert "CRF" not in plain["inference"]
    assert 0 <= refined["metrics"]["miou"] <= 1


def test_even_crf_window_is_refused_with_the_key() -> None:
    with pytest.raises(SemsegError, match="eval.crf_window"):
        semseg.load_config(None, ["eval.crf_window=6"])
