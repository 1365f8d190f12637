"""The HTML evaluation report: one self-contained page plus its PNG figures, opened from
disk with no server."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from semseg.classes import ClassSet
from semseg.console import percent
from semseg.files import write_text_atomic
from semseg.viz import (
    save_confusion_figure,
    save_histogram,
    save_iou_bars,
    save_samples_figure,
)

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.9em}
td,th{padding:.25em .7em;border-bottom:1px solid #eee}
th{background:#f5f5f5;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;gap:1em;flex-wrap:wrap}
.card{background:#f5f7fb;padding:.7em 1.2em;border-radius:6px}
.card b{display:block;font-size:1.4em}img{max-width:100%;border:1px solid #eee}
.swatch{display:inline-block;width:.9em;height:.9em;margin-right:.4em;vertical-align:middle}
.note{color:#666;font-size:.85em}
"""


def write_report(
    out_dir: Path,
    title: str,
    classes: ClassSet,
    metrics: dict[str, Any],
    confusion: np.ndarray,
    image_miou: Sequence[float],
    worst: Sequence[tuple[str, float, tuple[np.ndarray, np.ndarray, np.ndarray]]],
    details: dict[str, Any],
) -> Path:
    """Write OUT/index.html with confusion.png, iou.png, image_miou.png and worst.png."""
    out_dir.mkdir(parents=True, exist_ok=True)
    _save_figures(out_dir, classes, metrics, confusion, image_miou, worst)
    boundary_heads = "<th>BF</th><th>boundary IoU</th>" if "boundary_f1" in metrics else ""
    finite = [v for v in image_miou if v is not None and not math.isnan(v)]
    detail_rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in details.items()
    )
    worst_section = (
        (
            '<h2>Worst images by mIoU</h2><p class="note">image | ground truth | '
            "prediction | errors (green right, red wrong, grey ignored)</p>"
            '<img src="worst.png" alt="worst images">'
        )
        if worst
        else ""
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_STYLE}</style></head><body>
<h1>{html.escape(title)}</h1>
<div class="cards">{_cards(metrics)}</div>
<h2>Per-class results</h2>
<table><tr><th>class</th><th>IoU</th><th>Dice</th><th>precision</th><th>recall</th>{boundary_heads}<th>pixels</th></tr>
{_class_rows(classes, metrics)}
<tr><th>mean</th><td class="n">{percent(metrics["miou"])}</td><td class="n">{percent(metrics["mean_dice"])}</td><td></td><td></td></tr>
</table>
<p class="note">Percentages. "-" marks a class absent from both ground truth and prediction:
it has no IoU and is left out of the means. {html.escape(metrics["averaging"])}.</p>
<h2>IoU per class</h2><img src="iou.png" alt="IoU per class">
<h2>Confusion matrix</h2><img src="confusion.png" alt="confusion matrix">
<h2>Per-image mIoU</h2><p>{len(finite)} images: {_spread(finite)}.</p>
<img src="image_miou.png" alt="per-image mIoU histogram">
{worst_section}
<h2>Details</h2><table>{detail_rows}</table>
</body></html>
"""  # noqa: E501
    target = out_dir / "index.html"
    write_text_atomic(target, page)
    return target


def _save_figures(
    out_dir: Path,
    classes: ClassSet,
    metrics: dict[str, Any],
    confusion: np.ndarray,
    image_miou: Sequence[float],
    worst: Sequence[tuple[str, float, tuple[np.ndarray, np.ndarray, np.ndarray]]],
) -> None:
    names = list(classes.names)
    save_confusion_figure(out_dir / "confusion.png", confusion, names)
    save_iou_bars(out_dir / "iou.png", metrics["iou"], names)
    save_histogram(out_dir / "image_miou.png", image_miou, "per-image mIoU (%)")
    if worst:
        save_samples_figure(
            out_dir / "worst.png",
            [rows for _, _, rows in worst],
            classes,
            [f"{name} ({percent(miou)}%)" for name, miou, _ in worst],
            errors=True,
        )


def _cards(metrics: dict[str, Any]) -> str:
    """The headline figures, one card each."""
    cards = [
        ("mIoU", metrics["miou"]),
        ("pixel accuracy", metrics["pixel_accuracy"]),
        ("mean accuracy", metrics["mean_accuracy"]),
        ("FWIoU", metrics["fwiou"]),
        ("mean Dice", metrics["mean_dice"]),
    ]
    if "mean_boundary_f1" in metrics:
        cards += [
            ("boundary F1", metrics["mean_boundary_f1"]),
            ("boundary IoU", metrics["mean_boundary_iou"]),
        ]
    return "".join(f'<div class="card">{label}<b>{percent(v)}%</b></div>' for label, v in cards)


def _class_rows(classes: ClassSet, metrics: dict[str, Any]) -> str:
    """One table row per class: its palette swatch, name, figures and pixel count."""
    keys = ["iou", "dice", "precision", "recall"]
    if "boundary_f1" in metrics:
        keys += ["boundary_f1", "boundary_iou"]
    rows = []
    for i, name in enumerate(classes.names):
        red, green, blue = classes.palette[i]
        numbers = "".join(f'<td class="n">{percent(metrics[key][i])}</td>' for key in keys)
        rows.append(
            f'<tr><td><span class="swatch" style="background:#{red:02x}{green:02x}{blue:02x}">'
            f"</span>{html.escape(name)}</td>{numbers}"
            f'<td class="n">{metrics["support"][i]:,}</td></tr>'
        )
    return "".join(rows)


def _spread(finite: Sequence[float]) -> str:
    """Median and 10th/90th percentiles of the per-image mIoU."""
    if not finite:
        return "no images"
    return (
        f"median {percent(float(np.median(finite)))}, 10th percentile "
        f"{percent(float(np.percentile(finite, 10)))}, 90th "
        f"{percent(float(np.percentile(finite, 90)))}"
    )
