"""`semseg data check`: read every sample of every split, report what is wrong, and
count the class statistics that `loss.class_weights=auto` uses."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table
from torch.utils.data import DataLoader, Dataset

from semseg.config import DataConfig
from semseg.console import console, track
from semseg.data import resolve_num_workers
from semseg.data.base import SegmentationDataset
from semseg.data.registry import read_split, train_split_name, val_split_name
from semseg.data.stats import ClassStats, save_stats, stats_cache_path
from semseg.errors import DataProblem
from semseg.files import check_output_file

MAX_LISTED_PROBLEMS = 200


def check_data(
    data: DataConfig, splits: Sequence[str] | None = None, stats_out: Path | None = None
) -> CheckReport:
    """Read every sample of the splits (default: train and val); print each problem with
    its file, the sample counts and the class statistics with two suggested weightings;
    write the training split's statistics JSON (to `stats_out` and the cache that
    `loss.class_weights=auto` reads).

    Returns:
        The report; `report.clean` is True when nothing is wrong.

    Raises:
        SemsegError: nothing to check (a wrong root, folder or split list).
    """
    if stats_out is not None:
        check_output_file(stats_out, "--stats")
    report = check_dataset(data, splits)
    _print_problems(report, data.root)
    counts = ", ".join(f"{split}: {count}" for split, count in report.sample_counts.items())
    console.print(f"samples per split: {counts}")
    _save_training_stats(report, data, stats_out)
    if report.clean:
        warned = " (see the warnings above)" if report.findings else ""
        console.print(f"[green]no problems found[/green]{warned}")
    return report


def _save_training_stats(report: CheckReport, data: DataConfig, stats_out: Path | None) -> None:
    train = train_split_name(data)
    split = train if train in report.stats else next(iter(report.stats), None)
    stats = report.stats.get(split) if split else None
    if stats is None or not stats.num_images:
        return
    console.print(_stats_table(stats, f"class statistics of {split}"))
    fingerprint = report.fingerprints[split]
    cached = stats_cache_path(fingerprint)
    about = {"format": data.format, "root": str(data.root), "split": split}
    for path in {stats_out or cached, cached}:
        save_stats(path, stats, about | {"fingerprint": fingerprint})
    console.print(
        f"statistics written to {stats_out or cached} (loss.class_weights=auto uses them)"
    )


@dataclass(frozen=True)
class Finding:
    split: str
    kind: str
    path: str
    detail: str
    warning: bool = False

    @classmethod
    def of(cls, split: str, problem: DataProblem) -> Finding:
        return cls(split, problem.kind, problem.path, problem.detail, problem.warning)


@dataclass
class CheckReport:
    findings: list[Finding] = field(default_factory=list)
    sample_counts: dict[str, int] = field(default_factory=dict)
    stats: dict[str, ClassStats] = field(default_factory=dict)
    fingerprints: dict[str, str] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        """No problems (warnings allowed): `data check` exits 0."""
        return not any(not finding.warning for finding in self.findings)

    def add(self, finding: Finding) -> None:
        """Record a finding once (a file shared by splits is reported by each)."""
        if not any((f.kind, f.path) == (finding.kind, finding.path) for f in self.findings):
            self.findings.append(finding)


class _Checked(Dataset):
    """Loads a sample and returns its labels or the DataProblem, so one bad file does not
    stop a DataLoader that decodes in worker processes."""

    def __init__(self, dataset: SegmentationDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        try:
            return self.dataset.load(index)[1]
        except DataProblem as problem:
            return problem


def check_dataset(data: DataConfig, splits: Sequence[str] | None = None) -> CheckReport:
    report = CheckReport()
    names_by_split: dict[str, set[str]] = {}
    for split in splits or (train_split_name(data), val_split_name(data)):
        # A wrong root, folder or split list stops here with one line: nothing to list.
        dataset = read_split(data, split, strict=False)
        for problem in dataset.problems:
            report.add(Finding.of(split, problem))
        report.sample_counts[split] = len(dataset)
        report.fingerprints[split] = dataset.fingerprint()
        names_by_split[split] = {dataset.sample_name(i) for i in range(len(dataset))}
        stats = ClassStats(list(dataset.classes.names))
        loader = DataLoader(
            _Checked(dataset),
            batch_size=None,
            collate_fn=lambda item: item,
            num_workers=resolve_num_workers(data, dataset),
        )
        for result in track(loader, f"checking {split}"):
            if isinstance(result, DataProblem):
                report.add(Finding.of(split, result))
            else:
                stats.add(result)
        report.stats[split] = stats
    for finding in _duplicates(names_by_split):
        report.add(finding)
    return report


def _duplicates(names_by_split: dict[str, set[str]]) -> list[Finding]:
    findings = []
    splits = list(names_by_split)
    for i, first in enumerate(splits):
        for second in splits[i + 1 :]:
            for name in sorted(names_by_split[first] & names_by_split[second]):
                findings.append(
                    Finding(
                        f"{first}+{second}",
                        "duplicate across splits",
                        name,
                        f"sample {name!r} is in both {first} and {second}",
                    )
                )
    return findings


def _print_problems(report: CheckReport, root: Path | None) -> None:
    if not report.findings:
        return
    warnings = sum(finding.warning for finding in report.findings)
    title = f"{len(report.findings) - warnings} problem(s), {warnings} warning(s)"
    table = Table(title=title + (f", files under {root}" if root else ""), title_justify="left")
    for column in ("split", "problem", "file", "detail"):
        table.add_column(column, overflow="fold")
    # Problems first: they are what stops training.
    for finding in sorted(report.findings, key=lambda f: f.warning)[:MAX_LISTED_PROBLEMS]:
        kind = f"{finding.kind} (warning)" if finding.warning else finding.kind
        table.add_row(finding.split, kind, _relative(finding.path, root), finding.detail)
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
