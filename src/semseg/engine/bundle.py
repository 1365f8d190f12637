"""A trained model with what using it needs, whatever file it came from: the network (a
torch module; an ONNX file runs through onnxruntime inside one), its classes, the
resolved config (input normalisation, eval settings, the dataset it was trained on) and
plain facts about it (epoch, validation metrics, class-bias fit)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from semseg.classes import ClassSet
from semseg.config import Config, EvalConfig
from semseg.data import input_channels
from semseg.engine.checkpoint import (
    checkpoint_classes,
    checkpoint_config,
    load_checkpoint,
    model_from_checkpoint,
)
from semseg.engine.inference import InferenceSettings
from semseg.engine.precision import faster_inference_dtype


@dataclass
class ModelBundle:
    model: nn.Module
    classes: ClassSet
    config: Config
    source: str  # the path or hf:// address it was loaded from
    kind: str  # "checkpoint", "folder" or "onnx"
    info: dict[str, Any] = field(default_factory=dict)  # epoch, metrics, class_bias_fit

    @property
    def class_bias_fit(self) -> dict[str, Any] | None:
        return self.info.get("class_bias_fit")

    def inference_settings(
        self, eval_config: EvalConfig, device: torch.device
    ) -> InferenceSettings:
        """The eval.* settings for this model; an ONNX file runs in its own precision
        (onnxruntime, fp32), so no autocast is claimed for it. `eval.amp=auto` on a CPU
        with bf16 units takes bf16 or fp32 by which one is faster for this model."""
        settings = InferenceSettings.from_config(
            eval_config, device, self.config.data.normalization()
        )
        if self.kind == "onnx":
            return replace(settings, amp_dtype=None)
        if (
            eval_config.amp == "auto"
            and settings.amp_dtype == torch.bfloat16
            and device.type == "cpu"
        ):
            dtype = faster_inference_dtype(self.model, device, input_channels(self.config.data))
            return replace(settings, amp_dtype=dtype)
        return settings


def bundle_from_checkpoint(path: Path | str) -> ModelBundle:
    """A semseg checkpoint (best.pt, last.pt) as a bundle."""
    return bundle_from_payload(load_checkpoint(path), path)


def bundle_from_payload(payload: dict[str, Any], path: Path | str) -> ModelBundle:
    """A loaded checkpoint payload (from `path`) as a bundle."""
    return ModelBundle(
        model_from_checkpoint(payload, path),
        checkpoint_classes(payload),
        checkpoint_config(payload),
        str(path),
        "checkpoint",
        checkpoint_info(payload),
    )


def checkpoint_info(payload: dict[str, Any]) -> dict[str, Any]:
    """The plain facts a checkpoint carries about its model."""
    keys = ("epoch", "metrics", "class_bias", "class_bias_fit")
    return {key: payload.get(key) for key in keys}
