"""Class-prior logit adjustment, fitted on held-out data to maximise mIoU.

Class-weighted losses buy recall on rare classes with precision: median-frequency weights
multiply a CamVid bicyclist pixel's loss by 60x a road pixel's, and the trained network
over-predicts bicyclists accordingly (class-average accuracy far above IoU). Adding
t * log(prior_c) to every class's logits, with prior_c the class's share of labelled
pixels, moves all decision boundaries along one direction (logit adjustment, Menon et al.
2021). The prior is the training split's, the one the network learnt (times the loss's
class weights): t = 0 leaves the model as it is, t near 1 undoes median-frequency
weighting (whose weights are about 1 / prior), t < 0 favours rare classes further.

t is chosen on the validation split by mIoU, over a grid. One number, on purpose: a free
offset per class fitted CamVid's 101 val images better and its test images worse (one
run: 59.2 test mIoU against 62.5 for t; another: 63.1 against 62.5), and the validation
split's own class shares are a worse direction than the training split's (61.2 and 61.6
test mIoU on those runs): val need not share train's class balance.

The scores are a uniform random sample of the split's labelled pixels, which keeps memory
bounded on large datasets, computed with the configured test-time augmentation: offsets
added to the model's logits shift its mean log-probabilities by the same offsets (plus a
per-pixel constant, which argmax ignores), so the fit holds for augmented predictions
too. The resulting offsets are stored in the checkpoint and added inside the model's
forward pass (`SegmentationModel.set_class_bias`), so eval, predict and export all apply
them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from semseg.console import console, progress_bar, track
from semseg.data import train_dataset
from semseg.data.loading import SegmentationLoader
from semseg.data.sampling import EvaluationShard
from semseg.data.stats import dataset_stats, smoothed_prior
from semseg.engine.checkpoint import (
    checkpoint_classes,
    load_checkpoint,
    model_from_checkpoint,
    save_checkpoint,
)
from semseg.engine.checkpoint_eval import model_on_split
from semseg.engine.distributed import current_world
from semseg.engine.inference import InferenceSettings, predict_logits
from semseg.errors import SemsegError
from semseg.files import check_output_file
from semseg.metrics import ConfusionMatrix


def calibrate(
    checkpoint: Path | str,
    split: str | None = None,
    overrides: list[str] | None = None,
    config_file: Path | str | None = None,
    out: Path | str | None = None,
) -> ClassBiasFit:
    """Fit a checkpoint's class bias (the module docstring) maximising mIoU on a split
    and write the checkpoint with it.

    Args:
        checkpoint: a semseg checkpoint, e.g. runs/NAME/best.pt.
        split: the split to fit on; default the validation split. Score another one.
        overrides: dotted KEY=VALUE config overrides, as for `semseg.evaluate`.
        config_file: a YAML file applied before the overrides, as for `semseg.evaluate`.
        out: the checkpoint to write; default NAME_calibrated.pt beside it.

    Returns:
        The fit: offsets, strength t, mIoU on the fitted pixels before and after.

    Raises:
        SemsegError: see `semseg.evaluate`.
    """
    checkpoint = Path(checkpoint)
    default = checkpoint.with_name(f"{checkpoint.stem}_calibrated.pt")
    out = check_output_file(out or default, "--out")
    setup = model_on_split(checkpoint, split, overrides, config_file)
    if setup.bundle.kind != "checkpoint":
        raise SemsegError(
            f"{checkpoint}: calibrate writes a checkpoint; pass the .pt checkpoint the "
            f"{setup.bundle.kind} was exported from"
        )
    # The prior the network learnt: the training split's (counted once, then cached).
    training_split = train_dataset(setup.config.data)
    training = current_world().main_computes(
        lambda: dataset_stats(training_split, lambda x: track(x, "class statistics"))
    )
    fit = calibrate_checkpoint(
        load_checkpoint(checkpoint),
        checkpoint,
        out,
        setup.loader,
        setup.split,
        training.pixels,
        setup.device,
        setup.settings,
    )
    console.print(fit.describe(setup.classes.names))
    console.print(f"wrote {out}; score it on another split: semseg eval {out} --split SPLIT")
    return fit


def calibrate_checkpoint(
    payload: dict[str, Any],
    checkpoint: Path,
    out: Path,
    loader: SegmentationLoader,
    split: str,
    class_pixels: list[int],
    device: torch.device,
    settings: InferenceSettings,
) -> ClassBiasFit:
    """Fit the class bias of the model in `payload` (loaded from `checkpoint`) on `loader`
    (raw scores, whatever bias the file had) along the prior of `class_pixels` (the
    training split's pixels per class), and write the checkpoint with it to `out`
    (atomically; may be the same path)."""
    model = model_from_checkpoint(payload, checkpoint).to(device)
    model.set_class_bias(None)
    # The bias is added to the logits, before any CRF: it is fitted on scores without one.
    settings = replace(settings, crf=None)
    classes = checkpoint_classes(payload)
    scores, labels = sample_scores(
        model, loader, classes.num_classes, classes.ignore_index, device, settings
    )
    world = current_world()
    fit = world.main_computes(
        lambda: replace(fit_class_bias(scores, labels, class_pixels), split=split)
    )
    if world.is_main:
        entries = {"class_bias": fit.bias.tolist(), "class_bias_fit": fit.record(classes.names)}
        save_checkpoint(out, payload | entries)
    return fit


# Scores kept for fitting, in floats: 11 classes -> 2.7 M pixels (about 110 MB).
MAX_SCORES = 30_000_000


def sample_scores(
    model: nn.Module,
    loader: SegmentationLoader,
    num_classes: int,
    ignore_index: int,
    device: torch.device,
    settings: InferenceSettings,
    max_scores: int = MAX_SCORES,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Model scores (P x C, float32) and labels (P) of a uniform random sample of the
    loader's labelled pixels: every pixel is kept with the same probability, chosen so
    that the sample holds about `max_scores / C` pixels. Whether a pixel is kept depends
    on (seed, image, row, column) alone, so under torchrun the shards' samples, gathered
    on rank 0 (the only one that returns them), are the one-process sample."""
    total_pixels = len(loader.dataset) * _pixels_per_image(loader)
    keep = min(1.0, max_scores / num_classes / max(1, total_pixels))
    indices = iter(loader.sampler)
    scores, labels = [], []
    model.eval()
    with progress_bar() as progress:
        task = progress.add_task("calibration scores", total=len(loader), info="")
        for images, masks in loader:
            logits = predict_logits(model, images.to(device), settings).float().cpu()
            if logits.shape[-2:] != masks.shape[-2:]:
                logits = nn.functional.interpolate(
                    logits, size=masks.shape[-2:], mode="bilinear", align_corners=False
                )
            draws = [pixel_uniforms(seed, next(indices), masks.shape[-2:]) for _ in masks]
            chosen = (masks != ignore_index) & (masks < num_classes)
            chosen &= torch.stack(draws) < keep
            scores.append(logits.permute(0, 2, 3, 1)[chosen])
            labels.append(masks[chosen].long())
            progress.advance(task)
    if not isinstance(loader.sampler, EvaluationShard):
        return torch.cat(scores), torch.cat(labels)
    parts = current_world().gather_to_main((torch.cat(scores), torch.cat(labels)))
    if parts is None:
        return torch.empty(0, num_classes), torch.empty(0, dtype=torch.long)
    return torch.cat([s for s, _ in parts]), torch.cat([label for _, label in parts])


def pixel_uniforms(seed: int, image: int, shape: tuple[int, int]) -> torch.Tensor:
    """A number in [0, 1) for each pixel of an H x W map, from (seed, image index, row,
    column) alone (a splitmix64 hash): the same pixel of the same image gets the same
    number whatever the batch, its padding or the process."""
    base = np.random.SeedSequence([seed, image]).generate_state(1, np.uint64)[0]
    rows = np.arange(shape[0], dtype=np.uint64)[:, None] << np.uint64(32)
    z = base + rows + np.arange(shape[1], dtype=np.uint64)[None, :]
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return torch.from_numpy((z >> np.uint64(11)).astype(np.float64) * 2.0**-53)


def _pixels_per_image(loader: SegmentationLoader) -> int:
    """Pixels of the first sample's label: the sampling rate's yardstick."""
    _, mask = loader.samples[0]
    return mask.numel()


@dataclass(frozen=True)
class ClassBiasFit:
    bias: torch.Tensor  # C offsets: strength * log(prior), shifted to mean 0
    strength: float  # t
    prior: torch.Tensor  # C class shares of the training pixels (smoothed)
    miou_before: float  # on the fitting sample, so `miou_after` is optimistic
    miou_after: float
    pixels: int  # in the fitting sample
    split: str | None = None

    def record(self, names: tuple[str, ...] | list[str]) -> dict[str, Any]:
        """Plain data for checkpoints and summaries."""
        return {
            "offsets": dict(zip(names, self.bias.tolist(), strict=True)),
            "strength": self.strength,
            "prior": dict(zip(names, self.prior.tolist(), strict=True)),
            "split": self.split,
            "pixels": self.pixels,
            "miou_before": self.miou_before,
            "miou_after": self.miou_after,
            "rule": "logits + strength * log(training class prior), strength chosen by mIoU "
            "on the split; mIoU figures are on the pixels it was fitted on (optimistic after)",
        }

    def describe(self, names: tuple[str, ...] | list[str]) -> str:
        offsets = ", ".join(f"{n} {b:+.2f}" for n, b in zip(names, self.bias.tolist(), strict=True))
        return (
            f"class bias fitted on {self.split}: strength {self.strength:+.2f} x log(prior), "
            f"mIoU {100 * self.miou_before:.1f} -> {100 * self.miou_after:.1f} on the pixels "
            f"it was fitted on; offsets {offsets}"
        )


# The strengths tried: from favouring rare classes further (< 0) to over-correcting
# median-frequency weighting twice (2).
STRENGTHS = torch.arange(-20, 41) / 20  # -1.0 to 2.0 in steps of 0.05, 0 exactly


def fit_class_bias(
    scores: torch.Tensor, labels: torch.Tensor, class_pixels: list[int] | torch.Tensor
) -> ClassBiasFit:
    """The strength t in STRENGTHS whose offsets t * log(prior) give the highest mIoU of
    argmax(scores + offsets) on the sample (the smallest |t| among ties); the prior comes
    from `class_pixels`, the training split's pixel count of each class."""
    num_classes = len(class_pixels)
    prior = smoothed_prior(class_pixels)
    direction = prior.log().float()
    direction -= direction.mean()  # only differences between classes matter to argmax
    mious = torch.tensor(
        [_miou((scores + t * direction).argmax(1), labels, num_classes) for t in STRENGTHS]
    )
    candidates = (mious >= mious.max() - 1e-9).nonzero().flatten()
    best = int(candidates[STRENGTHS[candidates].abs().argmin()])
    strength = float(STRENGTHS[best])
    return ClassBiasFit(
        bias=strength * direction,
        strength=strength,
        prior=prior.float(),
        miou_before=_miou(scores.argmax(1), labels, num_classes),
        miou_after=float(mious[best]),
        pixels=len(labels),
    )


def _miou(pred: torch.Tensor, labels: torch.Tensor, num_classes: int) -> float:
    confusion = ConfusionMatrix(num_classes, ignore_index=-1)
    confusion.update(pred, labels)
    return confusion.compute()["miou"]
