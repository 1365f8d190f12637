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


def _needs_fp32_on_cpu(conv: nn.Conv2d, depthwise: bool) -> bool:
    # Depthwise, for speed where measured so (see CPU_TRAINING_PRECISIONS): oneDNN's bf16
    # depthwise *backward* ran 3-7x slower than its fp32 one on an AVX512-BF16 CPU
    # (forward on par; dense convolutions are faster in bf16); per layer on
    # EfficientNet-Lite0 shapes it made the CamVid U-Net step 1.4x faster.
    is_depthwise = 1 < conv.groups == conv.in_channels
    # Dilated with channel counts off oneDNN's blocking, for correctness: on channels_last
    # inputs its bf16 weight gradient is wrong (25 or 72 channels: 87-90 % relative error),
    # NaN, or a heap corruption (24 channels), while 16, 48 and 64 channels are right;
    # ESPNet's 25-channel branches made CamVid training NaN at its second step. Multiples
    # of 32 are kept in bf16 (the dilated ResNet stages and ASPP of DeepLab are 64-2048).
    dilated_off_block = max(conv.dilation) > 1 and (
        conv.in_channels % 32 != 0 or conv.out_channels % 32 != 0
    )
    return (depthwise and is_depthwise) or dilated_off_block


def cpu_autocast_exceptions(model: nn.Module, depthwise: bool = True) -> int:
    """Make the model's convolutions that are wrong in bf16 on the CPU (dilated, with
    channel counts that are not multiples of 32) and, with `depthwise`, its depthwise
    ones (slow there) run in fp32 under CPU autocast: a class swap, so weights,
    state_dict keys and CUDA behaviour stay as they were. Applying it again with another
    `depthwise` redoes the choice. Returns how many convolutions run in fp32."""
    changed = 0
    for module in model.modules():
        if type(module) in (nn.Conv2d, _Float32Conv2d):
            in_fp32 = _needs_fp32_on_cpu(module, depthwise)
            module.__class__ = _Float32Conv2d if in_fp32 else nn.Conv2d
            changed += in_fp32
    return changed


# What a CPU training step can run in: the autocast dtype (None: fp32) and whether the
# depthwise convolutions step out of bf16 into fp32. The first is the default where no
# timing decides (train.amp=bf16): the fastest on the AVX512-BF16 CPU it was developed on.
CPU_TRAINING_PRECISIONS: dict[str, tuple[torch.dtype | None, bool]] = {
    "bf16, depthwise fp32": (torch.bfloat16, True),
    "bf16": (torch.bfloat16, False),
    "fp32": (None, False),
}


def use_cpu_training_precision(model: nn.Module, name: str) -> torch.dtype | None:
    """Set the model's convolutions up for CPU_TRAINING_PRECISIONS[name]; returns the
    autocast dtype the training step runs under."""
    dtype, depthwise_in_fp32 = CPU_TRAINING_PRECISIONS[name]
    cpu_autocast_exceptions(model, depthwise=depthwise_in_fp32)
    return dtype


# A switch away from the default must gain this much (timing noise on a shared host is a
# few per cent; two runs of one config should not flip between precisions) ...
SWITCH_GAIN = 0.10
# ... and passes shorter than this are not worth timing (a tiny model or batch).
MIN_TIMED_SECONDS = 0.05


def fastest_cpu_training_precision(
    model: nn.Module, images: torch.Tensor, repeats: int = 2
) -> tuple[str, dict[str, float]]:
    """Which of CPU_TRAINING_PRECISIONS trains `model` fastest on this CPU, by the
    seconds per forward and backward pass of a batch like `images`: the default unless
    another is faster by SWITCH_GAIN. Measured, because that depends on the CPU: an AMX
    Xeon ran some models slower under bf16 autocast than in fp32. Returns the choice and
    the seconds timed for each (the default's alone when its pass is too short to be
    worth timing). Leaves the model as it found it (weights, batch-norm statistics, no
    gradients; its convolutions set up for the choice) and the random state too."""
    images = to_model_layout(model, images)
    saved = {key: value.clone() for key, value in model.state_dict().items()}
    was_training = model.training
    model.train()
    default, *others = CPU_TRAINING_PRECISIONS
    with torch.random.fork_rng():
        timings = {default: _seconds_per_training_pass(model, images, default, repeats)}
        if timings[default] >= MIN_TIMED_SECONDS:
            timings |= {
                name: _seconds_per_training_pass(model, images, name, repeats) for name in others
            }
    model.load_state_dict(saved)
    model.train(was_training)
    fastest = min(timings, key=timings.get)
    choice = fastest if timings[fastest] < (1 - SWITCH_GAIN) * timings[default] else default
    use_cpu_training_precision(model, choice)
    return choice, timings


def _seconds_per_training_pass(
    model: nn.Module, images: torch.Tensor, precision: str, repeats: int
) -> float:
    dtype = use_cpu_training_precision(model, precision)
    times = []
    for _ in range(repeats + 1):  # the first call picks kernels: not timed
        start = time.perf_counter()
        with autocast(images.device, dtype):
            logits = model(images)
        # Any scalar of the logits back-propagates through every trainable layer, as the
        # training loss does.
        logits.float().square().mean().backward()
        times.append(time.perf_counter() - start)
    model.zero_grad(set_to_none=True)
    return min(times[1:])


def uses_channels_last(model: nn.Module) -> bool:
    weight = next((p for p in model.parameters() if p.dim() == 4), None)
    return weight is not None and weight.is_contiguous(memory_format=torch.channels_last)


def to_model_layout(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Images in the model's memory layout (channels_last models get NHWC inputs)."""
    if images.dim() == 4 and uses_channels_last(model):
        return images.contiguous(memory_format=torch.channels_last)
    return images
