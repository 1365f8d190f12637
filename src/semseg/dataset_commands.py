"""What `semseg data check | preview | convert` do, as functions the CLI and tests call."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import torch
from rich.table import Table

from semseg.config import DataConfig
from semseg.console import console
from semseg.data import train_dataset
from semseg.data.check import CheckReport, check_dataset
from semseg.data.convert import convert_to_folder
from semseg.data.registry import train_split_name
from semseg.data.stats import save_stats, stats_cache_path
from semseg.errors import SemsegError
from semseg.viz import save_preview_figure

MAX_LISTED_PROBLEMS = 200


def run_data_check(data: DataConfig, splits: list[str] | None, stats_out: Path | None) -> bool:
    """Print problems, sample counts and class statistics; write the statistics JSON of
    the training split. Returns True when the data is clean."""
    report = check_dataset(data, splits)
    _print_problems(report, data.root)
    counts = ", ".join(f"{split}: {count}" for split, count in report.sample_counts.items())
    console.print(f"samples per split: {counts}")
    train = train_split_name(data)
    stats = report.stats.get(train) or next(iter(report.stats.values()), None)
    if stats is not None and stats.num_images:
        split = train if train in report.stats else next(iter(report.stats))
        console.print(_stats_table(stats, f"class statistics of {split}"))
        fingerprint = report.fingerprints[split]
        for path in {stats_out or stats_cache_path(fingerprint), stats_cache_path(fingerprint)}:
            save_stats(
                path,
                stats,
                {
                    "format": data.format,
                    "root": str(data.root),
                    "split": split,
                    "fingerprint": fingerprint,
                },
            )
        console.print(
            f"statistics written to {stats_out or stats_cache_path(fingerprint)} "
            "(loss.class_weights=auto uses them)"
        )
    if report.clean:
        console.print("[green]no problems found[/green]")
    return report.clean


def _print_problems(report: CheckReport, root: Path | None) -> None:
    if report.clean:
        return
    title = f"{len(report.findings)} problem(s)" + (f", files under {root}" if root else "")
    table = Table(title=title, title_justify="left")
    for column in ("split", "problem", "file", "detail"):
        table.add_column(column, overflow="fold")
    for finding in report.findings[:MAX_LISTED_PROBLEMS]:
        table.add_row(finding.split, finding.kind, _relative(finding.path, root), finding.detail)
    console.print(table)
    if len(report.findings) > MAX_LISTED_PROBLEMS:
        console.print(f"... and {len(report.findings) - MAX_LISTED_PROBLEMS} more")
    by_kind = Counter(finding.kind for finding in report.findings)
    console.print("by kind: " + ", ".join(f"{kind}: {n}" for kind, n in by_kind.most_common()))


def _relative(path: str, root: Path | None) -> str:
    if root is None or not path:
        return path
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return path


def _stats_table(stats, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    columns = ("class", "pixels", "% of all", "images", "median-freq weight", "ENet weight")
    for column in columns:
        table.add_column(column, justify="left" if column == "class" else "right")
    median = stats.median_frequency_weights()
    enet = stats.enet_weights()
    for index, name in enumerate(stats.class_names):
        table.add_row(
            name,
            f"{stats.pixels[index]:,}",
            f"{100 * stats.share_of_all[index]:.1f}",
            f"{stats.images[index]:,}",
            f"{median[index]:.4f}",
            f"{enet[index]:.4f}",
        )
    total = sum(stats.pixels) + stats.other_pixels
    other_share = 100 * stats.other_pixels / total if total else 0.0
    table.add_section()
    table.add_row("ignore", f"{stats.other_pixels:,}", f"{other_share:.1f}", "", "", "")
    return table


def run_data_preview(data: DataConfig, out: Path, count: int, seed: int) -> Path:
    """A grid of augmented training samples beside their masks."""
    dataset = train_dataset(data)
    torch.manual_seed(seed)
    mean = torch.tensor(data.mean).view(-1, 1, 1)
    std = torch.tensor(data.std).view(-1, 1, 1)
    if data.image_mode == "gray":
        mean, std = mean.mean().view(1, 1, 1), std.mean().view(1, 1, 1)
    samples = []
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(dataset), generator=generator)[:count].tolist()
    for index in order:
        image, mask = dataset[index]
        pixels = ((image * std + mean).clamp(0, 1) * 255).round().byte().permute(1, 2, 0)
        pixels = pixels.squeeze(-1) if pixels.shape[-1] == 1 else pixels
        samples.append((pixels.numpy(), mask.numpy()))
    if not out.parent.exists():
        raise SemsegError(f"{out.parent}: folder not found; create it or choose another --out")
    save_preview_figure(out, samples, dataset.classes)
    console.print(f"wrote {out} ({len(samples)} augmented training samples)")
    return out


def run_data_convert(data: DataConfig, out: Path, splits: list[str] | None) -> dict:
    counts = convert_to_folder(data, out, splits)
    listing = ", ".join(f"{split}: {count}" for split, count in counts.items())
    console.print(
        f"wrote {out} in the folder layout ({listing}); train on it with "
        f"data.format=folder data.root={out}"
    )
    return counts
