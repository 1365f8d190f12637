"""Running an exported ONNX file through onnxruntime, inside a torch module, so that
`semseg.load`, `predict` and `eval` treat it as any model: the same preprocessing,
sliding window and test-time augmentation, on the metadata stored in the file.

The metadata (`custom_metadata_map`) holds plain keys any app can read without semseg
(class_names, palette, ignore_index, mean, std, input_layout, input_dtype, class_bias,
semseg_version, metrics) and `semseg`, the JSON semseg itself reloads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from semseg.classes import ClassSet
from semseg.config import validate_config
from semseg.engine.bundle import ModelBundle
from semseg.errors import SemsegError

INPUT_NAME = "images"
OUTPUT_NAME = "logits"


def onnxruntime_module():
    try:
        import onnxruntime
    except ImportError:
        raise SemsegError("ONNX models need onnxruntime: pip install 'semseg[onnx]'") from None
    return onnxruntime


class OnnxModule(nn.Module):
    """An onnxruntime session behind `forward(images) -> logits`, images normalised
    N x C x H x W floats as every semseg model takes them. A file exported with
    `--uint8-input` gets them back as N x H x W x C bytes (exact for whole images; a
    rescaled test-time view is rounded to bytes)."""

    def __init__(self, path: Path, metadata: dict[str, Any], providers: list[str] | None = None):
        super().__init__()
        runtime = onnxruntime_module()
        self.path = path
        self.session = runtime.InferenceSession(
            str(path), providers=providers or runtime.get_available_providers()
        )
        self.uint8_input = metadata["input_dtype"] == "uint8"
        channels = len(metadata["mean"])
        self.register_buffer("mean", torch.tensor(metadata["mean"]).view(1, channels, 1, 1))
        self.register_buffer("std", torch.tensor(metadata["std"]).view(1, channels, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        images = images.detach().float()
        if self.uint8_input:
            pixels = (images * self.std.to(images.device) + self.mean.to(images.device)) * 255
            array = pixels.round().clamp(0, 255).byte().permute(0, 2, 3, 1).contiguous().cpu()
        else:
            array = images.contiguous().cpu()
        (logits,) = self.session.run([OUTPUT_NAME], {INPUT_NAME: array.numpy()})
        return torch.from_numpy(np.ascontiguousarray(logits)).to(images.device)


def read_metadata(path: Path) -> dict[str, Any]:
    """The file's semseg metadata (what `semseg export` stored)."""
    runtime = onnxruntime_module()
    try:
        session = runtime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own types for damaged files
        raise SemsegError(
            f"{path}: not a readable ONNX file ({type(err).__name__}: {str(err)[:100]})"
        ) from None
    stored = session.get_modelmeta().custom_metadata_map.get("semseg")
    if stored is None:
        raise SemsegError(
            f"{path}: an ONNX file without semseg metadata; semseg loads files written by "
            "'semseg export' (others run with onnxruntime directly)"
        )
    return json.loads(stored)


def load_onnx(path: Path | str) -> ModelBundle:
    """An exported ONNX file as a bundle.

    Raises:
        SemsegError: a missing, damaged or foreign file, or no onnxruntime.
    """
    path = Path(path)
    if not path.is_file():
        raise SemsegError(f"{path}: ONNX file not found")
    metadata = read_metadata(path)
    config = validate_config(metadata["config"])
    classes = ClassSet.from_dict(metadata["classes"], source=str(path))
    return ModelBundle(
        OnnxModule(path, metadata),
        classes,
        config,
        str(path),
        "onnx",
        dict(metadata.get("info") or {}),
    )
