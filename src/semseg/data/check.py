"""`semseg data check`: read every sample of every split and report what is wrong."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from torch.utils.data import DataLoader, Dataset

from semseg.config import DataConfig
from semseg.console import track
from semseg.data import resolve_num_workers
from semseg.data.base import SegmentationDataset
from semseg.data.registry import read_split, train_split_name, val_split_name
from semseg.data.stats import ClassStats
from semseg.errors import DataProblem


@dataclass(frozen=True)
class Finding:
    split: str
    kind: str
    path: str
    detail: str


@dataclass
class CheckReport:
    findings: list[Finding] = field(default_factory=list)
    sample_counts: dict[str, int] = field(default_factory=dict)
    stats: dict[str, ClassStats] = field(default_factory=dict)
    fingerprints: dict[str, str] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not self.findings


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
        report.findings.extend(Finding(split, p.kind, p.path, p.detail) for p in dataset.problems)
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
                report.findings.append(Finding(split, result.kind, result.path, result.detail))
            else:
                stats.add(result)
        report.stats[split] = stats
    report.findings.extend(_duplicates(names_by_split))
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
