"""Dataset formats by name. A format is a function reading one split into a dataset."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from semseg.config import DataConfig
from semseg.data.base import SegmentationDataset
from semseg.errors import DataProblem, SemsegError

SplitReader = Callable[[DataConfig, str], SegmentationDataset]


@dataclass(frozen=True)
class DatasetFormat:
    name: str
    read: SplitReader
    #: The (train, val) split names used when the config names none.
    default_splits: tuple[str, str]


FORMATS: dict[str, DatasetFormat] = {}


def register_format(
    name: str, default_splits: tuple[str, str] = ("train", "val")
) -> Callable[[SplitReader], SplitReader]:
    def register(read: SplitReader) -> SplitReader:
        if name in FORMATS:
            raise RuntimeError(f"dataset format {name!r} is already registered")
        FORMATS[name] = DatasetFormat(name, read, default_splits)
        return read

    return register


def get_format(name: str) -> DatasetFormat:
    if name not in FORMATS:
        raise SemsegError(
            f"config key 'data.format': unknown format {name!r}; "
            f"available: {', '.join(sorted(FORMATS))}"
        )
    return FORMATS[name]


def train_split_name(data: DataConfig) -> str:
    return data.train_split or get_format(data.format).default_splits[0]


def val_split_name(data: DataConfig) -> str:
    return data.val_split or get_format(data.format).default_splits[1]


def read_split(data: DataConfig, split: str, strict: bool = True) -> SegmentationDataset:
    """The untransformed samples of one split. `strict` stops at the first problem found
    while listing files; `data check` passes False to collect them all."""
    _check_folder_only_keys(data)
    dataset = get_format(data.format).read(data, split)
    if len(dataset) == 0 and not dataset.problems:
        dataset.problems.append(
            DataProblem(data.root, "empty split", f"split {split!r} has no samples")
        )
    if strict and dataset.problems:
        first = dataset.problems[0]
        more = (
            f" (and {len(dataset.problems) - 1} more problems)" if len(dataset.problems) > 1 else ""
        )
        raise SemsegError(f"{first}{more}; run 'semseg data check' for the full list")
    return dataset


def _check_folder_only_keys(data: DataConfig) -> None:
    if data.format == "folder":
        return
    defaults = DataConfig()
    for key in ("value_map", "mask_encoding", "mask_suffix", "binary_255", "classes"):
        if getattr(data, key) != getattr(defaults, key):
            raise SemsegError(
                f"config key 'data.{key}' applies to the folder format only; the "
                f"{data.format} format has its own label rules (remove the key)"
            )
