"""What `semseg models` does: a table of every registered model and its cost."""

from __future__ import annotations

import re

import torch
from rich.table import Table

from semseg.console import console, track
from semseg.engine.precision import dtype_name, resolve_amp
from semseg.errors import SemsegError
from semseg.models import build_model, list_models
from semseg.models.profile import count_flops, count_parameters, describe, measure_latency


def parse_size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)x(\d+)", text.strip())
    if not match or min(int(match[1]), int(match[2])) < 32:
        raise SemsegError(f"--size {text!r}: expected HEIGHTxWIDTH of at least 32, e.g. 360x480")
    return int(match[1]), int(match[2])


def run_models(size: str, measure: bool, num_classes: int) -> list[dict]:
    height, width = parse_size(size)
    amp_dtype = resolve_amp("auto", torch.device("cpu"))  # as eval.amp=auto runs inference
    rows = []
    for name in track(list_models(), "profiling models"):
        torch.manual_seed(0)
        model = build_model(name, num_classes)
        row = {
            "name": name,
            "description": describe(name),
            "params_m": count_parameters(model) / 1e6,
            "gflops": count_flops(model, height, width) / 1e9,
        }
        if measure:
            row["latency_ms"] = 1000 * measure_latency(model, height, width, amp_dtype=amp_dtype)
        rows.append(row)
    table = Table(
        title=f"models at {height}x{width}, {num_classes} classes, batch 1, "
        f"{torch.get_num_threads()} CPU threads"
        + (f", {dtype_name(amp_dtype)}" if measure and amp_dtype else ""),
        title_justify="left",
    )
    table.add_column("name")
    table.add_column("params (M)", justify="right")
    table.add_column("GFLOPs", justify="right")
    if measure:
        table.add_column("CPU ms", justify="right")
        table.add_column("img/s", justify="right")
    table.add_column("description")
    for row in rows:
        cells = [row["name"], f"{row['params_m']:.2f}", f"{row['gflops']:.1f}"]
        if measure:
            cells += [f"{row['latency_ms']:.0f}", f"{1000 / row['latency_ms']:.1f}"]
        table.add_row(*cells, row["description"])
    console.print(table)
    console.print("defaults shown; other encoders: model.encoder=NAME (timm name or tv_*)")
    return rows
