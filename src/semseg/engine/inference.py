"""Inference modes shared by eval, predict and validation: whole image, batched sliding
window, and multi-scale + flip test-time augmentation.

Scores come back at the input's size: the logits of a single whole/slide pass, or the
mean log-probabilities of the passes when several (scales, flip) are combined. Either
way their argmax is the prediction.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from semseg.config import EvalConfig, size_pair
from semseg.engine.crf import CRFSettings, crf_refine
from semseg.engine.precision import autocast, dtype_name, resolve_amp, to_model_layout

Normalization = tuple[tuple[float, ...], tuple[float, ...]]


@dataclass(frozen=True)
class InferenceSettings:
    mode: str = "whole"
    crop: tuple[int, int] = (512, 512)
    stride: tuple[int, int] = (341, 341)
    tile_batch: int = 8
    scales: tuple[float, ...] = (1.0,)
    flip: bool = False
    amp_dtype: torch.dtype | None = None  # autocast dtype of the forward passes
    crf: CRFSettings | None = None  # CRF refinement of the scores (eval.crf)
    # The images' (mean, std): the CRF compares colours, so it undoes the normalisation.
    normalization: Normalization | None = None

    @classmethod
    def from_config(
        cls,
        config: EvalConfig,
        device: torch.device | None = None,
        normalization: Normalization | None = None,
    ) -> InferenceSettings:
        tile_batch = config.tile_batch
        if tile_batch == "auto":
            # Batching tiles pays on GPUs; on a 2-core CPU it measured 0.7-0.9x of one tile
            # at a time (benchmarks/inference_speed.py): the CPU is already busy at batch 1.
            tile_batch = 8 if device is not None and device.type == "cuda" else 1
        return cls(
            config.mode,
            size_pair(config.crop_size),
            size_pair(config.stride),
            tile_batch,
            tuple(config.scales),
            config.flip,
            resolve_amp(config.amp, device or torch.device("cpu"), key="eval.amp"),
            _crf_settings(config) if config.crf else None,
            normalization,
        )

    def describe(self) -> str:
        text = (
            "whole image"
            if self.mode == "whole"
            else (
                f"sliding window {self.crop[0]}x{self.crop[1]}, stride {self.stride[0]}x"
                f"{self.stride[1]}, {self.tile_batch} tiles per batch"
            )
        )
        if self.scales != (1.0,):
            text += f", scales {list(self.scales)}"
        if self.flip:
            text += ", horizontal flip"
        if self.crf is not None:
            text += f", {self.crf.describe()}"
        return text + (f", {dtype_name(self.amp_dtype)}" if self.amp_dtype else "")

    @property
    def augmented(self) -> bool:
        return self.flip or self.scales != (1.0,)

    def single_pass(self) -> InferenceSettings:
        """The same mode and precision without test-time augmentation (nor CRF)."""
        return replace(self, scales=(1.0,), flip=False, crf=None)


def _crf_settings(config: EvalConfig) -> CRFSettings:
    return CRFSettings(
        iterations=config.crf_iterations,
        window=config.crf_window,
        appearance_weight=config.crf_appearance_weight,
        appearance_xy=config.crf_appearance_xy,
        appearance_rgb=config.crf_appearance_rgb,
        smoothness_weight=config.crf_smoothness_weight,
        smoothness_xy=config.crf_smoothness_xy,
    )


def _main_output(output: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor:
    return output["out"] if isinstance(output, dict) else output


@torch.inference_mode()
def predict_logits(
    model: nn.Module, images: torch.Tensor, settings: InferenceSettings | None = None
) -> torch.Tensor:
    """N x C_in x H x W normalised images -> N x C x H x W scores: the logits of one
    pass, or with test-time augmentation the mean log-probabilities of the passes (their
    softmax is the normalised geometric mean of the passes' probabilities).

    Log space, not probabilities, so that offsets added to the model's logits (the class
    bias) shift the scores by exactly those offsets plus a per-pixel constant: a bias
    fitted on these scores then picks the same classes once it sits in the model. With
    `settings.crf` the scores are the CRF's log-probabilities."""
    settings = settings or InferenceSettings()
    scores = _augmented(model, images, settings)
    if settings.crf is None:
        return scores
    mean, std = settings.normalization or ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    mean = images.new_tensor(mean).view(1, -1, 1, 1)
    std = images.new_tensor(std).view(1, -1, 1, 1)
    return crf_refine(scores, (images * std + mean) * 255, settings.crf)


def _augmented(model: nn.Module, images: torch.Tensor, settings: InferenceSettings):
    """One pass, or the mean log-probabilities of the test-time variants."""
    if not settings.augmented:
        return _single_pass(model, images, settings)
    height, width = images.shape[-2:]
    total = None
    for scale in settings.scales:
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        scaled = (
            images
            if scale == 1.0
            else F.interpolate(images, size=size, mode="bilinear", align_corners=False)
        )
        variants = [(scaled, False)] + ([(scaled.flip(-1), True)] if settings.flip else [])
        for batch, flipped in variants:
            scores = _single_pass(model, batch, settings)
            scores = scores.flip(-1) if flipped else scores
            log_probs = F.interpolate(
                scores, size=(height, width), mode="bilinear", align_corners=False
            ).log_softmax(1)
            total = log_probs if total is None else total + log_probs
    return total / (len(settings.scales) * (2 if settings.flip else 1))


def _single_pass(model: nn.Module, images: torch.Tensor, settings: InferenceSettings):
    with autocast(images.device, settings.amp_dtype):
        if settings.mode == "slide":
            return sliding_window(
                model, images, settings.crop, settings.stride, settings.tile_batch
            )
        return _main_output(model(to_model_layout(model, images))).float()


def _starts(length: int, crop: int, stride: int) -> list[int]:
    """Tile offsets covering [0, length): regular steps plus one flush with the end."""
    if length <= crop:
        return [0]
    starts = list(range(0, length - crop, stride))
    return starts + [length - crop]


def sliding_window(
    model: nn.Module,
    images: torch.Tensor,
    crop: tuple[int, int],
    stride: tuple[int, int],
    tile_batch: int,
) -> torch.Tensor:
    """Cut every image into overlapping crop-sized tiles, run them `tile_batch` at a time,
    and average the logits where tiles overlap."""
    n, _, height, width = images.shape
    crop_h, crop_w = min(crop[0], height), min(crop[1], width)
    boxes = [
        (i, y, x)
        for i in range(n)
        for y in _starts(height, crop_h, stride[0])
        for x in _starts(width, crop_w, stride[1])
    ]
    logits = counts = None
    for first in range(0, len(boxes), tile_batch):
        chunk = boxes[first : first + tile_batch]
        tiles = torch.stack([images[i, :, y : y + crop_h, x : x + crop_w] for i, y, x in chunk])
        out = _main_output(model(to_model_layout(model, tiles))).float()  # T x C x h x w
        if logits is None:
            logits = out.new_zeros((n, out.shape[1], height, width))
            counts = out.new_zeros((n, 1, height, width))
        for tile, (i, y, x) in zip(out, chunk, strict=True):
            logits[i, :, y : y + crop_h, x : x + crop_w] += tile
            counts[i, :, y : y + crop_h, x : x + crop_w] += 1
    return logits / counts
