"""Mixed precision and memory layout choices for the training step."""

from __future__ import annotations

import time
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


# The image size the inference precision is timed at (a CamVid frame).
TIMING_SIZE = (360, 480)


def faster_inference_dtype(
    model: nn.Module, device: torch.device, in_channels: int = 3, repeats: int = 3
) -> torch.dtype | None:
    """`eval.amp=auto` on a CPU with bf16 units: bf16 autocast or fp32 (None), whichever
    predicts one image faster here. Measured, because support does not mean speed: on an
    AMX Xeon semseg's lraspp ran 17.2 images/s in bf16 and 21.1 in fp32."""
    image = torch.randn(1, in_channels, *TIMING_SIZE, device=device)
    image = to_model_layout(model, image)
    timings = {
        dtype: _seconds_per_forward(model, image, dtype, repeats)
        for dtype in (None, torch.bfloat16)
    }
    return min(timings, key=timings.get)


def _seconds_per_forward(
    model: nn.Module, image: torch.Tensor, dtype: torch.dtype | None, repeats: int
) -> float:
    was_training = model.training
    model.eval()
    times = []
    with torch.inference_mode(), autocast(image.device, dtype):
        model(image)  # warm-up: first calls pick kernels
        for _ in range(repeats):
            start = time.perf_counter()
            model(image)
            times.append(time.perf_counter() - start)
    model.train(was_training)
    return min(times)


def dtype_name(dtype: torch.dtype) -> str:
    """'bfloat16' for torch.bfloat16: how tables and descriptions name a precision."""
    return str(dtype).removeprefix("torch.")


def autocast(device: torch.device, dtype: torch.dtype | None) -> AbstractContextManager:
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


class _Float32Conv2d(nn.Conv2d):
    """A convolution that steps out of CPU autocast and runs in fp32 (see
    `cpu_autocast_exceptions` for which, and why)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            with torch.autocast("cpu", enabled=False):
                return super().forward(x.float())
        return super().forward(x)


def _needs_fp32_on_cpu(conv: nn.Conv2d) -> bool:
    # Depthwise, for speed: oneDNN's bf16 depthwise *backward* runs 3-7x slower than its
    # fp32 one on an AVX512-BF16 CPU (forward on par; dense convolutions are faster in
    # bf16); per layer on EfficientNet-Lite0 shapes it made the CamVid U-Net step 1.4x
    # faster (benchmarks/speed.py).
    depthwise = 1 < conv.groups == conv.in_channels
    # Dilated with channel counts off oneDNN's blocking, for correctness: on channels_last
    # inputs its bf16 weight gradient is wrong (25 or 72 channels: 87-90 % relative error),
    # NaN, or a heap corruption (24 channels), while 16, 48 and 64 channels are right;
    # ESPNet's 25-channel branches made CamVid training NaN at its second step. Multiples
    # of 32 are kept in bf16 (the dilated ResNet stages and ASPP of DeepLab are 64-2048).
    dilated_off_block = max(conv.dilation) > 1 and (
        conv.in_channels % 32 != 0 or conv.out_channels % 32 != 0
    )
    return depthwise or dilated_off_block


def cpu_autocast_exceptions(model: nn.Module) -> int:
    """Make the model's convolutions that are slow or wrong in bf16 on the CPU (depthwise;
    dilated with channel counts that are not multiples of 32) run in fp32 under CPU
    autocast: a class swap, so weights, state_dict keys and CUDA behaviour stay as they
    were. Returns how many convolutions it changed."""
    changed = 0
    for module in model.modules():
        if type(module) is nn.Conv2d and _needs_fp32_on_cpu(module):
            module.__class__ = _Float32Conv2d
            changed += 1
    return changed


def uses_channels_last(model: nn.Module) -> bool:
    weight = next((p for p in model.parameters() if p.dim() == 4), None)
    return weight is not None and weight.is_contiguous(memory_format=torch.channels_last)


def to_model_layout(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Images in the model's memory layout (channels_last models get NHWC inputs)."""
    if images.dim() == 4 and uses_channels_last(model):
        return images.contiguous(memory_format=torch.channels_last)
    return images
