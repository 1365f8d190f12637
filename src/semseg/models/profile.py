"""Model cost: parameters, FLOPs at a given input size, measured latency."""

from __future__ import annotations

import inspect
import statistics
import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from semseg.engine.precision import autocast
from semseg.models.registry import _MODELS


def describe(name: str) -> str:
    """The first line of the builder's docstring."""
    return (inspect.getdoc(_MODELS[name]) or "").split("\n")[0].rstrip(".:")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.inference_mode()
def count_flops(model: nn.Module, height: int, width: int, in_channels: int = 3) -> int:
    """Floating-point operations of one forward pass (a multiply-add counts as 2)."""
    model.eval()
    counter = FlopCounterMode(display=False)
    with counter:
        model(torch.zeros(1, in_channels, height, width))
    return counter.get_total_flops()


@torch.inference_mode()
def measure_latency(
    model: nn.Module,
    height: int,
    width: int,
    repeats: int = 5,
    in_channels: int = 3,
    amp_dtype: torch.dtype | None = None,
) -> float:
    """Median seconds per batch-1 forward pass on the CPU, after one warm-up pass, in
    channels_last layout (about 1.8x faster than contiguous on x86 CPUs for these nets)
    and under autocast to `amp_dtype` if given (as `eval.amp` runs inference)."""
    model.eval().to(memory_format=torch.channels_last)
    images = torch.randn(1, in_channels, height, width).contiguous(
        memory_format=torch.channels_last
    )
    with autocast(images.device, amp_dtype):
        model(images)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model(images)
            times.append(time.perf_counter() - start)
    return statistics.median(times)
