"""Mixed precision and memory layout choices for the training step."""

from __future__ import annotations

from contextlib import AbstractContextManager

import torch
from torch import nn

from semseg.errors import SemsegError


def cpu_has_fast_bf16() -> bool:
    """bf16 pays off on CPUs with native bf16 units (AVX512-BF16, AMX); elsewhere it is
    emulated and slower than fp32."""
    checker = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(checker and checker())


def resolve_amp(setting: str, device: torch.device, key: str = "train.amp") -> torch.dtype | None:
    """The autocast dtype for `train.amp` (or `eval.amp`), or None for full fp32."""
    if setting == "off":
        return None
    if setting == "fp16":
        if device.type != "cuda":
            raise SemsegError(f"config key '{key}': fp16 needs CUDA; use bf16 or auto on CPU")
        return torch.float16
    if setting == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if device.type == "cpu" and cpu_has_fast_bf16() else None


def dtype_name(dtype: torch.dtype) -> str:
    """'bfloat16' for torch.bfloat16: how tables and descriptions name a precision."""
    return str(dtype).removeprefix("torch.")


def autocast(device: torch.device, dtype: torch.dtype | None) -> AbstractContextManager:
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def uses_channels_last(model: nn.Module) -> bool:
    weight = next((p for p in model.parameters() if p.dim() == 4), None)
    return weight is not None and weight.is_contiguous(memory_format=torch.channels_last)


def to_model_layout(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Images in the model's memory layout (channels_last models get NHWC inputs)."""
    if images.dim() == 4 and uses_channels_last(model):
        return images.contiguous(memory_format=torch.channels_last)
    return images
