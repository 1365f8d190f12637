"""Model cost: parameters, FLOPs at a given input size, measured latency; and the table
of every registered model that `semseg models` prints."""

from __future__ import annotations

import re
import statistics
import time
from typing import Any

import torch
from rich.table import Table
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from semseg.console import console, track
from semseg.engine.precision import autocast, dtype_name, resolve_amp
from semseg.errors import SemsegError
from semseg.models import build_model
from semseg.models.registry import MODELS


def model_table(
    size: tuple[int, int] = (360, 480), measure: bool = False, num_classes: int = 11
) -> list[dict[str, Any]]:
    """Every registered model (the user's too) at its defaults: parameters, GFLOPs at
    `size` (H, W) and, with `measure`, batch-1 CPU latency as `eval.amp=auto` runs it.
    Prints the table; returns its rows."""
    height, width = size
    amp_dtype = resolve_amp("auto", torch.device("cpu"))
    rows = []
    for name in track(MODELS.names(), "profiling models"):
        torch.manual_seed(0)
        model = build_model(name, num_classes)
        row = {
            "name": name,
            "description": MODELS.get(name).summary,
            "params_m": count_parameters(model) / 1e6,
            "gflops": count_flops(model, height, width) / 1e9,
        }
        if measure:
            row["latency_ms"] = 1000 * measure_latency(model, height, width, amp_dtype=amp_dtype)
        rows.append(row)
    precision = f", {dtype_name(amp_dtype)}" if measure and amp_dtype else ""
    console.print(
        _table(
            rows,
            f"models at {height}x{width}, {num_classes} classes, batch 1, "
            f"{torch.get_num_threads()} CPU threads{precision}",
            measure,
        )
    )
    console.print("defaults shown; other encoders: model.encoder=NAME (timm name or tv_*)")
    return rows


def _table(rows: list[dict[str, Any]], title: str, measured: bool) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("name")
    table.add_column("params (M)", justify="right")
    table.add_column("GFLOPs", justify="right")
    if measured:
        table.add_column("CPU ms", justify="right")
        table.add_column("img/s", justify="right")
    table.add_column("description")
    for row in rows:
        cells = [row["name"], f"{row['params_m']:.2f}", f"{row['gflops']:.1f}"]
        if measured:
            cells += [f"{row['latency_ms']:.0f}", f"{1000 / row['latency_ms']:.1f}"]
        table.add_row(*cells, row["description"])
    return table


def parse_size(text: str) -> tuple[int, int]:
    """'360x480' -> (360, 480): HEIGHTxWIDTH, each at least 32."""
    match = re.fullmatch(r"(\d+)x(\d+)", text.strip())
    if not match or min(int(match[1]), int(match[2])) < 32:
        raise SemsegError(f"--size {text!r}: expected HEIGHTxWIDTH of at least 32, e.g. 360x480")
    return int(match[1]), int(match[2])


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
