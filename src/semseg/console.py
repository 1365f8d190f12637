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


def _percent(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:.1f}"


def class_table(metrics: dict[str, Any], names: Sequence[str], title: str) -> Table:
    """Per-class IoU / Dice / precision / recall in percent, with the ground-truth pixels;
    '-' marks NaN (class absent, see the metric rules)."""
    table = Table(title=title, title_justify="left")
    table.add_column("class")
    for column in ("IoU", "Dice", "precision", "recall", "pixels"):
        table.add_column(column, justify="right")
    for index, name in enumerate(names):
        table.add_row(
            name,
            _percent(metrics["iou"][index]),
            _percent(metrics["dice"][index]),
            _percent(metrics["precision"][index]),
            _percent(metrics["recall"][index]),
            f"{metrics['support'][index]:,}",
        )
    table.add_section()
    table.add_row("mean", _percent(metrics["miou"]), _percent(metrics["mean_dice"]), "", "", "")
    return table


def summary_line(metrics: dict[str, Any]) -> str:
    return (
        f"mIoU {_percent(metrics['miou'])}  pixel acc {_percent(metrics['pixel_accuracy'])}  "
        f"mean acc {_percent(metrics['mean_accuracy'])}  FWIoU {_percent(metrics['fwiou'])}"
    )
