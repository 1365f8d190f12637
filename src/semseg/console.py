"""Terminal output: progress bars and per-class result tables (rich)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

console = Console(highlight=False, soft_wrap=True)  # paths in logs stay on one line


def progress_bar() -> Progress:
    """A bar with step counts, the task's `info` field (loss, images/s) and the ETA."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        # Logs and CI get the one-line epoch summaries instead of bar redraws.
        disable=not console.is_terminal,
    )


def track(items: Sequence[Any], description: str) -> Iterator[Any]:
    """Iterate with a progress bar."""
    with progress_bar() as progress:
        task = progress.add_task(description, total=len(items), info="")
        for item in items:
            yield item
            progress.advance(task)


def percent(value: float | None) -> str:
    """A 0..1 figure as a percentage with one decimal; '-' for NaN or None (undefined)."""
    if value is None or math.isnan(value):
        return "-"
    return f"{100 * value:.1f}"


def class_table(metrics: dict[str, Any], names: Sequence[str], title: str) -> Table:
    """Per-class IoU / Dice / precision / recall in percent, with the ground-truth pixels;
    '-' marks NaN (class absent, see the metric rules)."""
    boundary = "boundary_f1" in metrics
    table = Table(title=title, title_justify="left")
    table.add_column("class")
    columns = ["IoU", "Dice", "precision", "recall"] + (["BF"] if boundary else []) + ["pixels"]
    for column in columns:
        table.add_column(column, justify="right")
    for index, name in enumerate(names):
        cells = [metrics[key][index] for key in ("iou", "dice", "precision", "recall")]
        if boundary:
            cells.append(metrics["boundary_f1"][index])
        table.add_row(name, *map(percent, cells), f"{metrics['support'][index]:,}")
    table.add_section()
    means = [percent(metrics["miou"]), percent(metrics["mean_dice"]), "", ""]
    if boundary:
        means.append(percent(metrics["mean_boundary_f1"]))
    table.add_row("mean", *means, "")
    return table


def summary_line(metrics: dict[str, Any]) -> str:
    line = (
        f"mIoU {percent(metrics['miou'])}  pixel acc {percent(metrics['pixel_accuracy'])}  "
        f"mean acc {percent(metrics['mean_accuracy'])}  FWIoU {percent(metrics['fwiou'])}"
    )
    if "mean_boundary_f1" in metrics:
        line += (
            f"  boundary F1 {percent(metrics['mean_boundary_f1'])}  "
            f"boundary IoU {percent(metrics['mean_boundary_iou'])}"
        )
    return line
